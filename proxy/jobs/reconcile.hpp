// proxy/jobs/reconcile: `shadowgate reconcile`, the full data check: every user of v1 storage (or a
// list) against what Dolt holds, and every user Dolt holds that v1 does not, column by column
// (adapters/dolt/rows: the rows v1's state gives against the rows the tables hold): users,
// commits, blocks, every version, every pending diff. Drift is reported per user, kind (missing,
// extra, different) and column, with both values. v1 texts the plan's columns cannot give back
// exactly are counted and listed as `unrepresentable`, with the reason. With `repair`, each drifted
// user is written again as v1 storage has it, through the mirror's apply (its rows and watermark in
// one transaction); a user only Dolt holds is reported, never deleted.
//
// Reader threads read users from git while one connection reads them back from Dolt in batches
// (one statement per table per batch), so memory stays bounded by the batch and the queue. A
// checkpoint file (the last user before which everything is done, and the counts so far) lets
// an interrupted run resume.
#pragma once

#include "adapters/dolt/rows.hpp"
#include "config/config.hpp"
#include "proxy/common/worker_thread.hpp"

#include <atomic>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sg::proxy {

struct reconcile_options {
    std::vector<std::string> users;  // empty: every user of v1 storage, and every one of Dolt
    bool repair = false;
    int readers = 2;                // git reader threads
    std::size_t batch = 200;        // users read back from Dolt per statement
    std::string checkpoint;         // "": no resuming
    std::size_t max_listed = 1000;  // drift entries kept for the report (all are counted)
    // Called after each batch with the users done and to do (this run); may be empty.
    std::function<void(std::size_t done, std::size_t total)> on_progress;
};

struct reconcile_report {
    std::size_t users_checked = 0;  // compared this run
    std::size_t users_resumed = 0;  // skipped: done before the checkpoint
    std::size_t users_drifted = 0;  // with at least one difference (this run and resumed)
    std::size_t users_repaired = 0;
    std::size_t users_failed = 0;                // unreadable in v1 storage, or a failed repair
    std::size_t extra_users = 0;                 // only in Dolt
    std::map<std::string, std::size_t> by_kind;  // "missing block" -> count, and so on
    std::vector<std::pair<std::string, dolt::row_drift>> drift;  // user, difference (bounded)
    std::size_t unrepresentable = 0;  // v1 texts the columns cannot give back (all counted)
    std::vector<std::pair<std::string, dolt::unrepresentable_item>>
        unrepresentable_listed;                                 // bounded
    std::vector<std::pair<std::string, std::string>> failures;  // user, why
    std::string fatal;  // the run could not start or stopped (storage or database unusable)
    double seconds = 0;

    bool clean() const { return fatal.empty() && users_drifted == 0 && users_failed == 0; }
};

reconcile_report run_reconcile(const config::config& cfg, const reconcile_options& opts,
                               std::FILE* progress_out);

// For people: totals, drift by kind, the listed differences, failures.
std::string format_reconcile_report(const reconcile_report& r, bool repaired);
// For machines (--json, POST /admin/reconcile).
std::string reconcile_report_json(const reconcile_report& r);

class gate;

// POST /admin/reconcile: one reconcile at a time on its own thread inside the service (the
// admin listener never waits for it); its result goes to the gate's evidence. GET
// /admin/reconcile: running or not, progress, the last report.
class reconcile_job {
public:
    reconcile_job(const config::config& cfg, gate* g);
    ~reconcile_job();  // waits for a running reconcile
    reconcile_job(const reconcile_job&) = delete;
    reconcile_job& operator=(const reconcile_job&) = delete;

    // False when one is running already.
    bool start(reconcile_options opts);
    std::string status_json() const;

private:
    const config::config cfg_;
    gate* gate_;
    mutable std::mutex mu_;
    worker_thread thread_;
    bool running_ = false;
    bool repair_ = false;
    std::optional<reconcile_report> last_;
    std::atomic<std::size_t> done_{0}, total_{0};
};

}  // namespace sg::proxy
