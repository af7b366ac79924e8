// proxy/control/control_plane: the plan every replica follows, kept in the control tables of the
// database shadowgate uses (adapters/dolt/control.hpp). One thread polls the plan row every
// control.poll_interval and installs a new version in the router as a whole; it writes this
// replica's row (the version it applies) at each poll; and it runs the operators' changes (stage
// set, freeze, unfreeze: compare-and-set on the plan's version, recorded in the history), so no
// database call ever runs on a network thread. The config's stage is the plan of an empty
// database only.
//
// A replica that has not read the plan for control.stale_after fences itself: a freeze window in
// the last plan it read does not end (a flip may have happened meanwhile), and ready() is false
// while one is set. Without a freeze the replica keeps serving what it last read.
#pragma once

#include "config/config.hpp"
#include "proxy/common/metrics.hpp"
#include "proxy/common/result.hpp"
#include "proxy/control/transition.hpp"
#include "proxy/routing/router.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sg::control {

struct freeze_request {
    std::chrono::milliseconds length{0};  // from now; > 0
    std::vector<std::string> cohorts;     // empty: every cohort
    std::string reason;
    std::string who;
};

class control_plane {
public:
    struct hooks {
        // The gate's verdict JSON now (recorded with each change) and whether it says GO.
        std::function<std::string()> gate_verdict;
        // Called on the control thread after a new plan is installed (the composition root
        // starts the mirror and the comparer when the plan first needs them).
        std::function<void(const routing::plan&)> installed;
        // Why `next` cannot be served by this process (e.g. no v1_data_dir for a plan that
        // mirrors), or nullopt.
        std::function<std::optional<std::string>(const routing::plan&)> refuse;
    };

    // Registers shadowgate_stage{cohort}, shadowgate_stage_changes_total{from,to,forced} and
    // shadowgate_control_* in `reg`. Does not start anything.
    control_plane(const config::config& cfg, routing::router& router, prometheus::Registry& reg,
                  hooks h);
    ~control_plane();
    control_plane(const control_plane&) = delete;
    control_plane& operator=(const control_plane&) = delete;

    // Reads the plan once on the calling thread (writing the initial plan into an empty
    // database), then starts the poller.
    void start();
    // Stops the poller, waiting at most `bound`: false when it is still inside a database call
    // (the process must then exit without destroying what it uses). Idempotent.
    [[nodiscard]] bool stop(std::chrono::milliseconds bound);

    // Runs `job` on the control thread, after the poll in progress; false before start() and
    // after stop() (the job is then not run).
    [[nodiscard]] bool submit(std::function<void()> job);

    // On the control thread (through submit): one operator's change. Each reads the stored plan,
    // applies the change and writes it by compare-and-set (again on a stale version, a few
    // times), records it, installs it here at once and answers the change as JSON. A refused
    // change writes nothing and says why.
    proxy::result<nlohmann::json> set_stage(const stage_change& change);
    proxy::result<nlohmann::json> freeze(const freeze_request& request);
    proxy::result<nlohmann::json> unfreeze(const std::string& who, const std::string& reason);
    proxy::result<nlohmann::json> history(std::size_t limit);

    // Any thread: the plan in force, its version, this replica, whether it is fenced, and every
    // replica's last acknowledgement (as of the last poll).
    nlohmann::json status() const;
    // False while fenced with a freeze window set (see above).
    bool ready() const;
    // Refreshes the gauges read at scrape time.
    void refresh_metrics() const;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace sg::control
