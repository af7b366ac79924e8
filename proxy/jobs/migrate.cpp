// proxy/jobs/migrate: the backfill pipeline: git readers -> bounded queue -> one batching writer.
#include "proxy/jobs/migrate.hpp"

#include "adapters/dolt/connection.hpp"
#include "adapters/dolt/schema.hpp"
#include "adapters/dolt/store.hpp"
#include "adapters/dolt/values.hpp"
#include "adapters/git/reader.hpp"
#include "adapters/v1/state_diff.hpp"
#include "adapters/v1/utf8.hpp"
#include "proxy/common/dolt_session.hpp"
#include "proxy/common/progress.hpp"
#include "proxy/jobs/user_pipeline.hpp"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace sg::proxy {

namespace {

using steady = std::chrono::steady_clock;

using watermarks = std::map<std::string, std::pair<std::string, std::string>, std::less<>>;

// Every user's (v1 commit, diffs fingerprint) as last written, in one query.
dolt::result<watermarks> load_watermarks(dolt::connection& conn) {
    auto rows = conn.query("SELECT user_id, v1_commit, diffs_fingerprint FROM mirror_watermarks");
    if (!rows) return rows.error();
    watermarks out;
    for (auto& r : rows->data) {
        if (r.size() == 3 && r[0] && r[1] && r[2]) out[*r[0]] = {*r[1], *r[2]};
    }
    return out;
}

// Row counts in Dolt for `users` (all users when `all`), table by table.
dolt::result<std::array<std::size_t, 5>> dolt_totals(dolt::connection& conn,
                                                     const std::vector<std::string>& users,
                                                     bool all) {
    std::string where;
    if (!all) {
        where = " WHERE user_id IN (";
        for (std::size_t i = 0; i < users.size(); ++i) {
            if (i) where += ',';
            conn.append_quoted(where, users[i]);
        }
        where += ")";
        if (users.empty()) where = " WHERE 1 = 0";
    }
    std::array<std::size_t, 5> out{};
    static constexpr std::array<const char*, 5> tables{"users", "commits", "blocks",
                                                       "block_versions", "pending_diffs"};
    for (std::size_t i = 0; i < tables.size(); ++i) {
        auto rows = conn.query(std::string("SELECT COUNT(*) FROM ") + tables[i] + where);
        if (!rows) return rows.error();
        if (!rows->data.empty() && !rows->data[0].empty() && rows->data[0][0]) {
            out[i] = std::stoull(*rows->data[0][0]);
        }
    }
    return out;
}

void count_rows(const dolt::user_rows& s, migrate_report& r) {
    r.commits += s.commits.size();
    r.blocks += s.blocks.size();
    r.versions += s.versions.size();
    r.diffs += s.diffs.size();
}

// The users to work on: `only`, or every user of the storage. Entries that look like users but
// cannot be one (unsafe names, symlinks) are failures of the run. False (with report.fatal set)
// when the storage cannot be listed.
bool users_to_process(const git::storage_reader& reader, const std::vector<std::string>& only,
                      std::vector<std::string>& users, migrate_report& report) {
    users = only;
    if (!users.empty()) return true;
    auto listed = reader.list_users();
    if (!listed) {
        report.fatal = "cannot list users: " + listed.error().message;
        return false;
    }
    users = std::move(listed->users);
    for (const auto& s : listed->skipped) {
        ++report.users_failed;
        report.failures.emplace_back(s.name, "not a usable user directory: " + s.reason);
    }
    return true;
}

// Re-reads every user from Dolt and compares it with v1 storage, field by field.
// Users v1 storage cannot read are skipped, and recorded as failures when `record_unreadable`
// (migrate's readers have already recorded them).
void verify_users(const git::storage_reader& reader, dolt::connection& conn,
                  const std::vector<std::string>& users, migrate_report& report,
                  bool record_unreadable) {
    for (const auto& user : users) {
        auto expected = reader.read_user(user);
        if (!expected) {
            if (record_unreadable) {
                ++report.users_failed;
                report.failures.emplace_back(user, std::string(git::name(expected.error().kind)) +
                                                       ": " + expected.error().message);
            }
            continue;
        }
        auto actual = dolt::with_retry(conn, dolt::retry_policy{}, [&](dolt::connection& c) {
            return dolt::read_user(c, user);
        });
        ++report.users_verified;
        if (!actual) {
            report.drift.emplace_back(user, "cannot read back: " + actual.error().to_string());
            continue;
        }
        if (!*actual) {
            report.drift.emplace_back(user, "missing user");
            continue;
        }
        const auto want = dolt::derive_rows(expected->state);
        for (const auto& d : dolt::diff_rows(want, **actual)) {
            report.drift.emplace_back(user, dolt::to_string(d));
        }
        if (record_unreadable) {  // else migrate's readers have listed them too
            for (const auto& u : want.unrepresentable) {
                report.unrepresentable.emplace_back(user, u.item + " " + u.key + ": " + u.reason);
            }
        }
    }
}

}  // namespace

migrate_report run_verify(const config::config& cfg, const std::vector<std::string>& only) {
    migrate_report report;
    const auto t0 = steady::now();
    auto finish = [&] {
        report.seconds = std::chrono::duration<double>(steady::now() - t0).count();
        return report;
    };
    auto reader = git::storage_reader::open(cfg.v1_data_dir);
    if (!reader) {
        report.fatal = "cannot open v1 storage " + cfg.v1_data_dir + ": " + reader.error().message;
        return finish();
    }
    std::vector<std::string> users;
    if (!users_to_process(*reader, only, users, report)) return finish();
    report.users_seen = users.size();
    dolt::connection conn(dolt_options(cfg));
    if (auto c = conn.connect(); !c) {
        report.fatal = "cannot connect to " + conn.describe() + ": " + c.error().to_string();
        return finish();
    }
    verify_users(*reader, conn, users, report, /*record_unreadable=*/true);
    return finish();
}

namespace {

std::string unrepresentable_lines(const migrate_report& r) {
    if (r.unrepresentable.empty()) return "  unrepresentable: 0\n";
    std::string out = fmt::format(
        "  unrepresentable: {} (v1 texts the plan's columns cannot give back exactly)\n",
        r.unrepresentable.size());
    for (const auto& [user, what] : r.unrepresentable) {
        out += fmt::format("    {}: {}\n", v1::escaped(user), what);
    }
    return out;
}

}  // namespace

std::string format_verify_report(const migrate_report& r) {
    std::string out;
    if (!r.fatal.empty()) return "verify: FAILED to start: " + r.fatal + "\n";
    out +=
        fmt::format("verify: {} users compared, {} differences ({:.1f} s)\n",
                    group_thousands(r.users_verified), group_thousands(r.drift.size()), r.seconds);
    for (const auto& [user, what] : r.drift) {
        out += fmt::format("    {}: {}\n", v1::escaped(user), what);
    }
    out += unrepresentable_lines(r);
    if (!r.failures.empty()) {
        out += fmt::format("  unreadable in v1 storage ({}):\n", r.failures.size());
        for (const auto& [user, why] : r.failures) {
            out += fmt::format("    {}: {}\n", v1::escaped(user), why);
        }
    }
    return out;
}

dolt::commit_policy to_commit_policy(config::migrate_commit c) {
    switch (c) {
        case config::migrate_commit::per_user_import: return dolt::commit_policy::per_user_import;
        case config::migrate_commit::once_per_run: return dolt::commit_policy::once_per_run;
        case config::migrate_commit::off: break;
    }
    return dolt::commit_policy::off;
}

migrate_report run_migrate(const config::config& cfg, const migrate_options& opts,
                           std::FILE* progress_out) {
    migrate_report report;
    const auto t0 = steady::now();
    auto finish = [&] {
        report.seconds = std::chrono::duration<double>(steady::now() - t0).count();
        return report;
    };

    auto reader = open_v1_storage(cfg, report.fatal);
    if (!reader) return finish();

    std::vector<std::string> users;
    if (!users_to_process(*reader, opts.users, users, report)) return finish();
    report.users_seen = users.size();

    std::optional<dolt::connection> conn;
    watermarks marks;
    if (!opts.dry_run) {
        conn.emplace(dolt_options(cfg));
        if (auto c = conn->connect(); !c) {
            report.fatal = "cannot connect to " + conn->describe() + ": " + c.error().to_string();
            return finish();
        }
        if (auto m = dolt::migrate(*conn); !m) {
            report.fatal = "schema migration failed: " + m.error().to_string();
            return finish();
        }
        auto loaded = load_watermarks(*conn);
        if (!loaded) {
            report.fatal = "cannot read watermarks: " + loaded.error().to_string();
            return finish();
        }
        marks = std::move(*loaded);
    }

    // Readers: skip users whose watermark matches (cheap: refs and directory metadata only),
    // read the others in full.
    item_queue queue(std::max<std::size_t>(opts.batch_size * 2, 16));
    reader_pool readers(queue, users, 0, opts.readers, [&](std::size_t k) {
        item it{users[k], std::nullopt, "", {}, k};
        if (auto mark = marks.find(users[k]); mark != marks.end()) {
            auto hf = reader->head_and_fingerprint(users[k]);
            if (hf && !hf->diffs.racy && hf->head == mark->second.first &&
                hf->diffs.value == mark->second.second) {
                return it;  // unchanged
            }
        }
        auto read = reader->read_user(users[k]);
        if (read) {
            for (const auto& w : read->warnings) {
                it.warnings.push_back(std::string(git::name(w.kind)) + ": " + w.subject + ": " +
                                      w.message);
            }
            it.rows = dolt::derive_rows(read->state);
        } else {
            it.failure = std::string(git::name(read.error().kind)) + ": " + read.error().message;
        }
        return it;
    });

    dolt::write_options wopts;
    const std::size_t batch_size =
        opts.commit_policy == dolt::commit_policy::per_user_import ? 1 : opts.batch_size;
    std::vector<dolt::user_rows> batch;
    progress_reporter progress(progress_out ? progress_out : stderr, users.size(), "users");
    std::size_t done = 0;

    auto write_batch = [&](std::vector<dolt::user_rows>& states) {
        if (states.empty()) return;
        if (opts.dry_run) {
            for (auto& s : states) {
                count_rows(s, report);
                report.rows +=
                    2 + s.commits.size() + s.blocks.size() + s.versions.size() + s.diffs.size();
                ++report.users_written;
            }
            states.clear();
            return;
        }
        auto write = [&](std::span<const dolt::user_rows> part) {
            return dolt::with_retry(*conn, dolt::retry_policy{}, [&](dolt::connection& c) {
                return dolt::write_users(c, part, wopts);
            });
        };
        auto record = [&](std::span<const dolt::user_rows> part, const dolt::write_stats& st) {
            for (const auto& s : part) count_rows(s, report);
            report.users_written += part.size();
            report.rows += st.rows;
            report.statements += st.statements;
            auto committed =
                dolt::commit_after_import(*conn, opts.commit_policy, part, std::time(nullptr));
            if (committed && committed->outcome == dolt::commit_outcome::committed) {
                ++report.dolt_commits;
            }
        };
        auto whole = write(states);
        if (whole) {
            record(states, *whole);
        } else {
            // One bad user must not sink the batch: write them one by one to find it.
            for (const auto& s : states) {
                std::span<const dolt::user_rows> one(&s, 1);
                auto single = write(one);
                if (single) {
                    record(one, *single);
                } else {
                    ++report.users_failed;
                    report.failures.emplace_back(s.user_id, single.error().to_string());
                }
            }
        }
        states.clear();
    };

    while (auto it = queue.pop()) {
        ++done;
        for (auto& w : it->warnings) report.warnings.emplace_back(it->user_id, std::move(w));
        if (!it->failure.empty()) {
            ++report.users_failed;
            report.failures.emplace_back(it->user_id, it->failure);
        } else if (!it->rows) {
            ++report.users_unchanged;
        } else {
            for (const auto& u : it->rows->unrepresentable) {
                report.unrepresentable.emplace_back(it->user_id,
                                                    u.item + " " + u.key + ": " + u.reason);
            }
            batch.push_back(std::move(*it->rows));
        }
        // Flush a full batch, or a partial one when the readers are behind, so progress and
        // resumability never wait on a slow reader.
        if (batch.size() >= batch_size || (!batch.empty() && queue.empty())) {
            write_batch(batch);
        }
        if (progress_out) progress.update(done);
    }
    readers.join();
    write_batch(batch);
    if (progress_out) progress.finish(done);

    if (!opts.dry_run) {
        auto end = dolt::commit_end_of_run(
            *conn, opts.commit_policy,
            fmt::format("shadowgate migrate: {} users written", report.users_written),
            std::time(nullptr), /*stage_new_tables=*/true);
        if (end && end->outcome == dolt::commit_outcome::committed) ++report.dolt_commits;
    }

    if (!opts.dry_run) {
        auto totals = dolt_totals(*conn, users, opts.users.empty());
        if (totals) report.dolt_totals = *totals;
    }

    if (opts.verify && !opts.dry_run) {
        verify_users(*reader, *conn, users, report, /*record_unreadable=*/false);
    }
    return finish();
}

std::string format_report(const migrate_report& r, const migrate_options& opts) {
    std::string out;
    auto line = [&]<class... Args>(fmt::format_string<Args...> f, Args&&... args) {
        out += fmt::format(f, std::forward<Args>(args)...);
        out += '\n';
    };
    if (!r.fatal.empty()) {
        line("migrate: FAILED to start: {}", r.fatal);
        return out;
    }
    line("migrate{}: {} users in {:.1f} s ({:.0f} users/s)", opts.dry_run ? " (dry run)" : "",
         group_thousands(r.users_seen), r.seconds,
         r.seconds > 0 ? static_cast<double>(r.users_seen) / r.seconds : 0.0);
    line("  options:  batches of {} users, {} reader{}, Dolt commits {}", opts.batch_size,
         opts.readers, opts.readers == 1 ? "" : "s", dolt::name(opts.commit_policy));
    line("  users:    {} {}, {} unchanged, {} failed", group_thousands(r.users_written),
         opts.dry_run ? "to write" : "written", group_thousands(r.users_unchanged),
         group_thousands(r.users_failed));
    line("  commits:  {}", group_thousands(r.commits));
    line("  blocks:   {}", group_thousands(r.blocks));
    line("  versions: {}", group_thousands(r.versions));
    line("  diffs:    {}", group_thousands(r.diffs));
    line("  rows:     {}{}", group_thousands(r.rows),
         opts.dry_run ? "" : fmt::format(" in {} statements", group_thousands(r.statements)));
    if (!opts.dry_run) line("  dolt commits: {}", r.dolt_commits);
    if (r.dolt_totals) {
        const auto& t = *r.dolt_totals;
        line("  in Dolt now: {} users, {} commits, {} blocks, {} versions, {} diffs",
             group_thousands(t[0]), group_thousands(t[1]), group_thousands(t[2]),
             group_thousands(t[3]), group_thousands(t[4]));
    }
    if (!r.failures.empty()) {
        line("  failed users ({}):", r.failures.size());
        for (const auto& [user, why] : r.failures) line("    {}: {}", v1::escaped(user), why);
    }
    if (!r.warnings.empty()) {
        constexpr std::size_t shown = 50;
        line("  warnings ({}): skipped or odd storage, the rest of each user was migrated",
             r.warnings.size());
        for (std::size_t i = 0; i < r.warnings.size() && i < shown; ++i) {
            line("    {}: {}", v1::escaped(r.warnings[i].first), r.warnings[i].second);
        }
        if (r.warnings.size() > shown) line("    ... and {} more", r.warnings.size() - shown);
    }
    if (opts.verify) {
        line("  verify: {} users compared, {} differences", group_thousands(r.users_verified),
             group_thousands(r.drift.size()));
        for (const auto& [user, what] : r.drift) line("    {}: {}", v1::escaped(user), what);
    }
    out += unrepresentable_lines(r);
    return out;
}

int exit_code(const migrate_report& r) {
    return r.fatal.empty() && r.users_failed == 0 && r.failures.empty() && r.drift.empty() ? 0 : 1;
}

}  // namespace sg::proxy
