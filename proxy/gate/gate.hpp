// proxy/gate/gate: the cutover gate of the running service. It keeps the evidence (comparison
// counts of the gate's target per endpoint and result, when the shadow stage began, the last
// reconcile) in gate.state_file, rewritten atomically every gate.flush_interval and at stop, so a
// restart continues the soak instead of starting it again; and it judges GO / NO-GO from that
// evidence plus the mirror's live health (comparator/gate). GET /admin/gate, `shadowgate gate`, and
// the shadowgate_gate_* metrics read it.
#pragma once

#include "comparator/gate.hpp"
#include "config/config.hpp"
#include "proxy/common/result.hpp"

#include <memory>
#include <string>

namespace prometheus {
class Registry;
}

namespace sg::proxy {

class mirror;
class shadow;

class gate {
public:
    // `sh` and `mir` may be null (stages without them). Registers shadowgate_gate_* and
    // shadowgate_reconcile_* in `reg`, which outlives the gate.
    gate(const config::config& cfg, const shadow& sh, const mirror& mir, prometheus::Registry& reg);
    ~gate();
    gate(const gate&) = delete;
    gate& operator=(const gate&) = delete;

    // Loads the state file (absent: a fresh start) and starts the flush thread. Fails when the
    // file cannot be used (unreadable, not the gate's JSON): the caller refuses to start rather
    // than overwrite evidence it could not read.
    [[nodiscard]] result<> start();
    void stop();  // writes the state once more; idempotent

    // A reconcile finished (a whole check of every user records itself here).
    void record_reconcile(const comparator::gate::reconcile_record& r);

    comparator::gate::verdict judge() const;
    // GET /admin/gate: the verdict, every criterion, and the evidence behind them.
    std::string verdict_json() const;
    // Sets shadowgate_gate_go, shadowgate_gate_criterion_pass{criterion,endpoint} and the last
    // reconcile's series from the verdict now; /metrics calls it before the exposition.
    void refresh_metrics() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// The verdict JSON of GET /admin/gate as a table for people (what `shadowgate gate` prints).
std::string format_verdict(const std::string& verdict_json);

}  // namespace sg::proxy
