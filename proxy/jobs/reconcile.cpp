// proxy/jobs/reconcile: see the header.
#include "proxy/jobs/reconcile.hpp"

#include "adapters/dolt/connection.hpp"
#include "adapters/dolt/dolt_commit.hpp"
#include "adapters/dolt/store.hpp"
#include "adapters/git/reader.hpp"
#include "proxy/common/dolt_session.hpp"
#include "proxy/common/file_util.hpp"
#include "proxy/common/progress.hpp"
#include "proxy/common/task_failure.hpp"
#include "proxy/gate/gate.hpp"
#include "proxy/jobs/user_pipeline.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>

namespace sg::proxy {

namespace {

using json = nlohmann::json;
using steady = std::chrono::steady_clock;

std::string kind_of(const dolt::row_drift& d) {
    std::string k = std::string(dolt::name(d.what)) + " " + d.item;
    if (!d.column.empty()) k += "." + d.column;
    return k;
}

dolt::row_drift whole(dolt::row_drift::kind k, std::string item) {
    dolt::row_drift d;
    d.what = k;
    d.item = std::move(item);
    return d;
}

void note_drift(reconcile_report& r, const std::string& user, std::vector<dolt::row_drift> found,
                std::size_t max_listed) {
    if (found.empty()) return;
    ++r.users_drifted;
    for (auto& d : found) {
        ++r.by_kind[kind_of(d)];
        if (r.drift.size() < max_listed) r.drift.emplace_back(user, std::move(d));
    }
}

// The checkpoint: every user up to and including `after` (in sorted order) is done, with these
// counts. Listed drift is not kept (the counts are).
struct checkpoint {
    std::string after;
    reconcile_report counts;
};

json counts_json(const reconcile_report& r) {
    return {{"users_checked", r.users_checked},
            {"users_drifted", r.users_drifted},
            {"users_repaired", r.users_repaired},
            {"users_failed", r.users_failed},
            {"extra_users", r.extra_users},
            {"unrepresentable", r.unrepresentable},
            {"by_kind", r.by_kind}};
}

std::string load_checkpoint(const std::string& path, std::optional<checkpoint>& out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return errno == ENOENT ? std::string() : "cannot read checkpoint " + path;
    std::stringstream text;
    text << in.rdbuf();
    const json j = json::parse(text.str(), nullptr, false);
    try {
        if (j.is_discarded() || !j.is_object() || !j.at("after").is_string()) throw 0;
        checkpoint c;
        c.after = j.at("after").get<std::string>();
        const json& n = j.at("counts");
        c.counts.users_checked = n.at("users_checked").get<std::size_t>();
        c.counts.users_drifted = n.at("users_drifted").get<std::size_t>();
        c.counts.users_repaired = n.at("users_repaired").get<std::size_t>();
        c.counts.users_failed = n.at("users_failed").get<std::size_t>();
        c.counts.extra_users = n.at("extra_users").get<std::size_t>();
        c.counts.unrepresentable = n.value("unrepresentable", std::size_t{0});
        c.counts.by_kind = n.at("by_kind").get<std::map<std::string, std::size_t>>();
        out = std::move(c);
    } catch (...) {
        return path + " is not a reconcile checkpoint; remove it to start from the beginning";
    }
    return {};
}

}  // namespace

reconcile_report run_reconcile(const config::config& cfg, const reconcile_options& opts,
                               std::FILE* progress_out) {
    reconcile_report report;
    const auto t0 = steady::now();
    auto finish = [&] {
        report.seconds = std::chrono::duration<double>(steady::now() - t0).count();
        return report;
    };
    auto reader = open_v1_storage(cfg, report.fatal);
    if (!reader) return finish();
    dolt::connection conn(dolt_options(cfg));
    if (auto c = conn.connect(); !c) {
        report.fatal = "cannot connect to " + conn.describe() + ": " + c.error().to_string();
        return finish();
    }

    // The users: the list, or every user of v1 storage plus those only Dolt holds.
    std::vector<std::string> users = opts.users;
    std::vector<std::string> extra;
    if (users.empty()) {
        auto listed = reader->list_users();
        if (!listed) {
            report.fatal = "cannot list users: " + listed.error().message;
            return finish();
        }
        users = std::move(listed->users);
        for (const auto& s : listed->skipped) {
            ++report.users_failed;
            report.failures.emplace_back(s.name, "not a usable user directory: " + s.reason);
        }
        auto in_dolt = dolt::list_users(conn);
        if (!in_dolt) {
            report.fatal = "cannot list Dolt's users: " + in_dolt.error().to_string();
            return finish();
        }
        const std::set<std::string> in_v1(users.begin(), users.end());
        for (auto& u : *in_dolt) {
            if (!in_v1.count(u)) extra.push_back(std::move(u));
        }
    }
    std::sort(users.begin(), users.end());
    users.erase(std::unique(users.begin(), users.end()), users.end());

    // Resume after the checkpoint.
    std::size_t first = 0;
    if (!opts.checkpoint.empty()) {
        std::optional<checkpoint> cp;
        if (auto e = load_checkpoint(opts.checkpoint, cp); !e.empty()) {
            report.fatal = e;
            return finish();
        }
        if (cp) {
            const auto failures = std::move(report.failures);
            report = cp->counts;
            report.failures = failures;
            first = static_cast<std::size_t>(
                std::upper_bound(users.begin(), users.end(), cp->after) - users.begin());
            report.users_resumed = first;
        }
    }
    if (first == 0) {
        // Users only Dolt holds: drift, reported (a reconcile never deletes a user).
        for (const auto& u : extra) {
            ++report.extra_users;
            note_drift(report, u, {whole(dolt::row_drift::kind::extra, "user")}, opts.max_listed);
        }
    }

    // Readers fill the queue from `first` on; the consumer compares in batches.
    item_queue queue(std::max<std::size_t>(opts.batch * 2, 16));
    reader_pool readers(queue, users, first, opts.readers, [&](std::size_t k) {
        item it{users[k], std::nullopt, "", {}, k};
        auto read = reader->read_user(users[k]);
        if (read) {
            it.rows = dolt::derive_rows(read->state);
        } else if (read.error().kind == git::error_kind::not_found) {
            it.failure = "not_found";  // listed by the caller: maybe only in Dolt
        } else {
            it.failure = std::string(git::name(read.error().kind)) + ": " + read.error().message;
        }
        return it;
    });

    dolt::write_options wopts;
    progress_reporter progress(progress_out ? progress_out : stderr, users.size() - first, "users");
    std::vector<bool> done(users.size(), false);
    std::size_t low = first;  // every user before this index is done
    std::size_t finished = 0;

    auto save_checkpoint = [&] {
        if (opts.checkpoint.empty() || low == 0) return;
        json j = {{"after", users[low - 1]}, {"counts", counts_json(report)}};
        if (auto saved = write_atomically(opts.checkpoint, j.dump() + "\n"); !saved) {
            report.failures.emplace_back("(checkpoint)", saved.error().what);
        }
    };

    std::vector<item> batch;
    auto compare_batch = [&]() -> bool {
        std::vector<std::string> ids;
        for (const auto& it : batch) {
            if (it.rows) ids.push_back(it.user_id);
        }
        auto in_dolt = dolt::with_retry(conn, dolt::retry_policy{}, [&](dolt::connection& c) {
            return dolt::read_users(c, ids);
        });
        if (!in_dolt) {
            report.fatal = "cannot read users back from Dolt: " + in_dolt.error().to_string();
            return false;
        }
        for (auto& it : batch) {
            ++report.users_checked;
            if (!it.rows) {
                if (it.failure == "not_found") {
                    // Listed by the caller and absent from v1 storage.
                    auto one = dolt::read_users(conn, std::span<const std::string>(&it.user_id, 1));
                    if (one && !one->empty()) {
                        ++report.extra_users;
                        note_drift(report, it.user_id,
                                   {whole(dolt::row_drift::kind::extra, "user")}, opts.max_listed);
                    } else {
                        ++report.users_failed;
                        report.failures.emplace_back(it.user_id, "in neither v1 storage nor Dolt");
                    }
                } else {
                    ++report.users_failed;
                    report.failures.emplace_back(it.user_id, it.failure);
                }
                continue;
            }
            for (const auto& u : it.rows->unrepresentable) {
                ++report.unrepresentable;
                if (report.unrepresentable_listed.size() < opts.max_listed)
                    report.unrepresentable_listed.emplace_back(it.user_id, u);
            }
            const auto found = in_dolt->find(it.user_id);
            std::vector<dolt::row_drift> drift;
            if (found == in_dolt->end()) {
                drift.push_back(whole(dolt::row_drift::kind::missing, "user"));
            } else {
                drift = dolt::diff_rows(*it.rows, found->second);
            }
            if (drift.empty()) continue;
            note_drift(report, it.user_id, std::move(drift), opts.max_listed);
            if (!opts.repair) continue;
            auto applied = dolt::with_retry(conn, dolt::retry_policy{}, [&](dolt::connection& c) {
                return dolt::apply_user(c, *it.rows, wopts);
            });
            if (applied) {
                ++report.users_repaired;
            } else {
                ++report.users_failed;
                report.failures.emplace_back(it.user_id,
                                             "repair failed: " + applied.error().to_string());
            }
        }
        for (const auto& it : batch) done[it.index] = true;
        while (low < users.size() && done[low]) ++low;
        finished += batch.size();
        batch.clear();
        save_checkpoint();
        if (progress_out) progress.update(finished);
        if (opts.on_progress) opts.on_progress(finished, users.size() - first);
        return true;
    };

    bool ok = true;
    while (auto it = queue.pop()) {
        if (!ok) continue;  // drain the readers
        batch.push_back(std::move(*it));
        if (batch.size() >= opts.batch) ok = compare_batch();
    }
    readers.join();
    if (ok && !batch.empty()) ok = compare_batch();
    if (progress_out) progress.finish(finished);
    if (!ok) return finish();

    if (report.users_repaired > 0) {
        // One Dolt commit for the whole repair; recorded in mirror_commit_log on a server that
        // is not Dolt, as the mirror's are (reconcile writes beside the running mirror).
        const dolt::commit_request req{
            fmt::format("shadowgate reconcile --repair: {} users written again as v1 has them",
                        report.users_repaired),
            "shadowgate", std::time(nullptr), false};
        if (auto made = dolt::commit_or_record(conn, req, "", ""); !made) {
            report.failures.emplace_back(
                "(dolt commit)", "the repair's Dolt commit failed: " + made.error().to_string());
        }
    }
    // A whole run: the next one starts from the beginning.
    if (!opts.checkpoint.empty() && low == users.size()) std::remove(opts.checkpoint.c_str());
    return finish();
}

std::string format_reconcile_report(const reconcile_report& r, bool repaired) {
    if (!r.fatal.empty()) return "reconcile: FAILED: " + r.fatal + "\n";
    std::string out = fmt::format(
        "reconcile: {} users compared{}, {} with drift, {} only in Dolt, {} failed ({:.1f} s){}\n",
        group_thousands(r.users_checked),
        r.users_resumed ? fmt::format(" (+{} before the checkpoint)", r.users_resumed) : "",
        group_thousands(r.users_drifted), r.extra_users, r.users_failed, r.seconds,
        r.clean() ? ": clean" : "");
    if (repaired)
        out += fmt::format("  repaired: {} users written again as v1 has them\n", r.users_repaired);
    for (const auto& [kind, n] : r.by_kind) out += fmt::format("  {:<20} {}\n", kind, n);
    for (const auto& [user, d] : r.drift)
        out += fmt::format("    {}: {}\n", user, dolt::to_string(d));
    out += fmt::format(
        "  unrepresentable: {}{}\n", r.unrepresentable,
        r.unrepresentable ? " (v1 texts the plan's columns cannot give back exactly)" : "");
    for (const auto& [user, u] : r.unrepresentable_listed)
        out += fmt::format("    {}: {} {}: {}\n", user, u.item, u.key, u.reason);
    for (const auto& [user, why] : r.failures) out += fmt::format("  failed {}: {}\n", user, why);
    return out;
}

std::string reconcile_report_json(const reconcile_report& r) {
    json j = counts_json(r);
    j["users_resumed"] = r.users_resumed;
    j["clean"] = r.clean();
    j["seconds"] = r.seconds;
    if (!r.fatal.empty()) j["fatal"] = r.fatal;
    json drift = json::array();
    for (const auto& [user, d] : r.drift) {
        json one = {{"user", user},
                    {"kind", std::string(dolt::name(d.what))},
                    {"item", d.item},
                    {"key", d.key}};
        if (d.what == dolt::row_drift::kind::different) {
            one["column"] = d.column;
            one["v1"] = d.v1;
            one["v2"] = d.v2;
        }
        drift.push_back(std::move(one));
    }
    j["drift"] = std::move(drift);
    json unrep = json::array();
    for (const auto& [user, u] : r.unrepresentable_listed) {
        unrep.push_back({{"user", user}, {"item", u.item}, {"key", u.key}, {"reason", u.reason}});
    }
    j["unrepresentable_listed"] = std::move(unrep);
    json failures = json::array();
    for (const auto& [user, why] : r.failures) failures.push_back({{"user", user}, {"error", why}});
    j["failures"] = std::move(failures);
    return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

reconcile_job::reconcile_job(const config::config& cfg, gate* g) : cfg_(cfg), gate_(g) {}

reconcile_job::~reconcile_job() { thread_.join(); }

bool reconcile_job::start(reconcile_options opts) {
    std::lock_guard lock(mu_);
    if (running_) return false;
    thread_.join();
    running_ = true;
    repair_ = opts.repair;
    done_ = 0;
    total_ = 0;
    opts.on_progress = [this](std::size_t done, std::size_t total) {
        done_ = done;
        total_ = total;
    };
    auto run = [this, opts = std::move(opts)](const std::stop_token&) {
        reconcile_report r;
        try {
            r = run_reconcile(cfg_, opts, nullptr);
        } catch (...) {  // counted and logged; the job ends, failed, instead of running forever
            task_end(process_task_failures(), task_kind::reconcile_job, std::current_exception());
            r.fatal = "the run ended with an exception (event=task_failed)";
        }
        // A whole check of every user counts for the gate; a list of users does not.
        if (gate_ != nullptr && r.fatal.empty() && opts.users.empty()) {
            comparator::gate::reconcile_record rec;
            rec.finished_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
            rec.clean = r.clean();
            rec.users = r.users_checked + r.users_resumed;
            rec.drifted_users = r.users_drifted;
            rec.unrepresentable = r.unrepresentable;
            gate_->record_reconcile(rec);
        }
        std::lock_guard lock(mu_);
        last_ = std::move(r);
        running_ = false;
    };
    thread_.start("sg-reconcile", task_kind::reconcile_job, std::move(run));
    return true;
}

std::string reconcile_job::status_json() const {
    std::lock_guard lock(mu_);
    json j = {{"running", running_},
              {"repair", repair_},
              {"done", done_.load()},
              {"total", total_.load()}};
    j["last"] = last_ ? json::parse(reconcile_report_json(*last_)) : json(nullptr);
    return j.dump() + "\n";
}

}  // namespace sg::proxy
