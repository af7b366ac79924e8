// proxy/mirror/forward_pass: one pass of the mirror's worker for one user, in four steps: read
// (v1's HEAD and fingerprint against the watermark, then the state itself, incrementally from
// what this mirror applied last when it can), plan (pass_plan: pure), apply (the rows that
// differ, in one transaction with the watermark, or commit by commit), commit (the Dolt commits
// or records the plan names). Blocking: the worker thread runs it.
#include "adapters/dolt/dolt_commit.hpp"
#include "adapters/dolt/schema.hpp"
#include "adapters/v1/utf8.hpp"
#include "proxy/mirror/mirror_apply.hpp"
#include "proxy/mirror/mirror_internal.hpp"

#include <fmt/format.h>

#include <chrono>
#include <ctime>

namespace sg::proxy {

namespace {

using steady = std::chrono::steady_clock;
constexpr auto relaxed = std::memory_order_relaxed;

std::string short_sha(std::string_view s) { return std::string(s.substr(0, 12)); }

ml::pass_outcome dolt_failure(const dolt::error& e) {
    ml::pass_outcome out;
    out.error = e.to_string();
    out.result = e.kind == dolt::error_kind::connection_lost ? ml::pass_result::unreachable
                 : e.kind == dolt::error_kind::retryable     ? ml::pass_result::retry
                                                             : ml::pass_result::parked;
    return out;
}

ml::pass_outcome unchanged() {
    ml::pass_outcome out;
    out.result = ml::pass_result::unchanged;
    return out;
}

// The outcome `o` with what was read of v1 (a parked user remembers which state failed).
ml::pass_outcome at(ml::pass_outcome o, std::string_view head, std::string_view fingerprint) {
    o.head = std::string(head);
    o.fingerprint = std::string(fingerprint);
    return o;
}

}  // namespace

std::size_t approximate_bytes(const v1::user_state& s) {
    std::size_t n = sizeof s + s.diffs_fingerprint.size() + s.head.size();
    for (const auto& c : s.commits) n += sizeof c + c.message.size() + c.author.size() + 96;
    for (const auto& b : s.blocks) n += sizeof b + b.source.size() + b.label.size() + 40;
    for (const auto& v : s.versions) {
        n += sizeof v + v.source.size() + v.message.size() + v.author.size() + v.label.size() + 40;
    }
    for (const auto& d : s.diffs) n += sizeof d + 2 * d.raw_json.size();
    return n;
}

// ---- commits -----------------------------------------------------------------------------------

void mirror::impl::record_commit(dolt::connection& conn, const ml::commit_step& step,
                                 std::string_view user) {
    const auto t0 = steady::now();
    dolt::commit_request req;
    req.message = step.message;
    req.author = step.author;
    req.time = step.time;
    req.stage_new_tables = new_tables;
    auto r = dolt::commit_or_record(conn, req, user, step.v1_commit);
    dolt_commit_ns.fetch_add(
        static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - t0).count()),
        relaxed);
    if (!r) {
        // The data is committed and the watermark moved; only the Dolt commit is missing, and
        // the next one (-a) takes these changes with it.
        dolt_commit_failures.fetch_add(1, relaxed);
        spdlog::warn("event=mirror_dolt_commit_failed user={} error=\"{}\"", v1::escaped(user),
                     v1::escaped(r.error().to_string()));
        return;
    }
    new_tables = false;
    if (r->outcome == dolt::commit_outcome::nothing_to_commit) {
        dolt_commits_empty.fetch_add(1, relaxed);
    } else {
        dolt_commits.fetch_add(1, relaxed);
    }
}

void mirror::impl::commit_interval(dolt::connection& conn, bool force) {
    if (mode != commit_mode::interval || !interval_pending) return;
    if (!force && steady::now() - interval_since < cfg.mirror.dolt_commit_interval) return;
    if (!conn.connected()) return;
    ml::commit_step step;
    step.message = fmt::format("shadowgate mirror: {} v1 commit{} from {} user{}", interval_commits,
                               interval_commits == 1 ? "" : "s", interval_users,
                               interval_users == 1 ? "" : "s");
    step.author = "shadowgate";
    step.time = std::time(nullptr);
    record_commit(conn, step, "");
    interval_pending = false;
    interval_commits = 0;
    interval_users = 0;
    interval_since = steady::now();
}

// ---- the pass ----------------------------------------------------------------------------------

ml::pass_outcome mirror::impl::git_failure(const git::error& e) {
    git_errors.fetch_add(1, relaxed);
    ml::pass_outcome out;
    out.error = std::string(git::name(e.kind)) + ": " + e.message;
    out.result = e.kind == git::error_kind::io ? ml::pass_result::retry : ml::pass_result::parked;
    return out;
}

// A connection and the schema: nullopt when both are there.
std::optional<ml::pass_outcome> mirror::impl::prepare(dolt::connection& conn, bool& schema_ready) {
    if (auto up = conn.ensure_connected(); !up) {
        ml::pass_outcome out;
        out.result = ml::pass_result::unreachable;
        out.error = up.error().to_string();
        return out;
    }
    if (schema_ready) return std::nullopt;
    auto m = dolt::migrate(conn);
    if (!m) {
        schema_failures.fetch_add(1, relaxed);
        auto o = dolt_failure(m.error());
        if (o.result == ml::pass_result::parked)
            o.result = ml::pass_result::retry;  // not the user's
        return o;
    }
    schema_ready = true;
    // New tables are untracked on Dolt: the next Dolt commit must add them (-A, not -a).
    if (!m->empty()) new_tables = true;
    return std::nullopt;
}

std::variant<mirror::impl::pass_read, ml::pass_outcome> mirror::impl::read_user(
    dolt::connection& conn, const git::storage_reader& store, const std::string& user) {
    // Cheap first: HEAD and the pending_diffs/ fingerprint against the watermark (a burst's
    // later triggers usually find their change applied by the pass of an earlier one).
    auto now_at = store.head_and_fingerprint(user);
    if (!now_at) return git_failure(now_at.error());
    auto mark = dolt::read_watermark(conn, user);
    if (!mark) return at(dolt_failure(mark.error()), now_at->head, now_at->diffs.value);
    const auto matches = [&](std::string_view head, std::string_view fingerprint) {
        return *mark && (*mark)->v1_commit == head && (*mark)->diffs_fingerprint == fingerprint;
    };
    if (matches(now_at->head, now_at->diffs.value)) return unchanged();

    // What this mirror applied last, while Dolt still holds it: read on from there.
    auto known = applied_state(user);
    if (known && !matches(known->read.state.head, known->read.state.diffs_fingerprint)) {
        known.reset();
    }
    auto read = known ? store.read_user_since(known->read) : store.read_user(user);
    if (!read) return at(git_failure(read.error()), now_at->head, now_at->diffs.value);
    (read->incremental ? reads_incremental : reads_full).fetch_add(1, relaxed);
    if (matches(read->state.head, read->state.diffs_fingerprint)) {  // moved back meanwhile
        return unchanged();
    }
    return pass_read{std::move(*mark), std::move(known), std::move(*read)};
}

std::variant<mirror::impl::pass_applied, ml::pass_outcome> mirror::impl::apply(
    dolt::connection& conn, const git::storage_reader& store, const std::string& user,
    const pass_read& r, const ml::pass_plan& plan) {
    const v1::user_state& state = r.read.state;
    pass_applied done;
    dolt::write_options wopts;
    // Only what is new is derived: the rest comes from the rows applied last.
    done.rows = dolt::derive_rows(state, r.known ? &r.known->rows : nullptr);
    auto count = [&](const dolt::apply_stats& st) {
        rows_written.fetch_add(st.rows_inserted, relaxed);
        rows_deleted.fetch_add(st.rows_deleted, relaxed);
        done.diffs_changed += st.diffs_changed;
    };
    if (plan.replay) {
        // Each v1 commit applied on its own, its Dolt commit right after.
        auto failed = apply_one_by_one(conn, store, done.rows, plan.history.new_commits, wopts,
                                       [&](const v1::commit& c, const dolt::apply_stats& st) {
                                           count(st);
                                           record_commit(conn, ml::commit_for(c), user);
                                       });
        if (failed) {
            if (failed->from == step_failure::source::dolt) {
                return at(dolt_failure(failed->dolt_error), state.head, state.diffs_fingerprint);
            }
            git_errors.fetch_add(1, relaxed);
            ml::pass_outcome out;
            out.error = failed->message;
            out.result = ml::pass_result::retry;
            return at(std::move(out), state.head, state.diffs_fingerprint);
        }
        return done;
    }
    dolt::apply_options aopts;
    aopts.known = r.known ? &r.known->rows : nullptr;
    auto stats = dolt::apply_user(conn, done.rows, wopts, aopts);
    if (!stats) return at(dolt_failure(stats.error()), state.head, state.diffs_fingerprint);
    if (stats->used_known) applies_known.fetch_add(1, relaxed);
    count(*stats);
    return done;
}

void mirror::impl::commit(dolt::connection& conn, const std::string& user,
                          const v1::user_state& state, const ml::pass_plan& plan,
                          std::size_t diffs_changed) {
    if (mode == commit_mode::interval) {
        interval_pending = true;
        interval_commits += plan.history.new_commits.size();
        interval_users += 1;
        return;
    }
    for (const auto& step :
         ml::commits_after_apply(plan, state, user, mode, diffs_changed, std::time(nullptr))) {
        record_commit(conn, step, user);
    }
}

ml::pass_outcome mirror::impl::run_pass(dolt::connection& conn, bool& schema_ready,
                                        const std::string& user) {
    if (auto stopped = prepare(conn, schema_ready)) return *stopped;
    const git::storage_reader* store = storage();
    if (store == nullptr) {
        ml::pass_outcome out;
        out.result = ml::pass_result::retry;
        out.error = "v1 storage unusable: " + cfg.v1_data_dir;
        return out;
    }

    auto read = read_user(conn, *store, user);
    if (auto* stopped = std::get_if<ml::pass_outcome>(&read)) return std::move(*stopped);
    auto& r = std::get<pass_read>(read);
    const v1::user_state& state = r.read.state;

    // On a server that is not Dolt there is no history to build, only the record of each commit.
    auto is_dolt = conn.is_dolt();
    if (!is_dolt) return at(dolt_failure(is_dolt.error()), state.head, state.diffs_fingerprint);
    const auto mark_commit =
        r.mark ? std::optional<std::string_view>(r.mark->v1_commit) : std::nullopt;
    const ml::pass_plan plan = ml::plan_pass(state, mark_commit, mode, *is_dolt);
    if (plan.history.rewritten) {
        history_rewrites.fetch_add(1, relaxed);
        spdlog::warn("event=mirror_history_rewrite user={} watermark={} head={} action=reimport",
                     v1::escaped(user), short_sha(plan.old_head), short_sha(state.head));
    }

    auto written = apply(conn, *store, user, r, plan);
    if (auto* stopped = std::get_if<ml::pass_outcome>(&written)) return std::move(*stopped);
    auto& a = std::get<pass_applied>(written);
    commit(conn, user, state, plan, a.diffs_changed);

    applied_commits.fetch_add(plan.history.new_commits.size(), relaxed);
    applied_diffs.fetch_add(a.diffs_changed, relaxed);
    ml::pass_outcome out = at(ml::pass_outcome{}, state.head, state.diffs_fingerprint);
    keep_applied_state(
        user, std::make_shared<const applied>(applied{std::move(r.read), std::move(a.rows)}));
    return out;
}

}  // namespace sg::proxy
