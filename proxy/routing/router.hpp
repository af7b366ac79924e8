// proxy/routing/router: where each request goes. A session asks decide(route) once per request
// and follows the answer: which side serves it, where a write goes, whether its answer is
// mirrored or compared, whether it is frozen. The plan behind the answers is immutable and is
// replaced whole (install), so a change of plan at run time touches no session code, and a
// request is decided by one plan from start to end.
#pragma once

#include "adapters/v1/routes.hpp"
#include "config/config.hpp"
#include "proxy/routing/plan.hpp"

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>

namespace sg::routing {

enum class side : std::uint8_t { v1, v2 };

struct decision {
    side reads_from = side::v1;       // who answers a read
    side writes_to = side::v1;        // who receives a write
    bool mirrored = false;            // a write's answer is reported to the forward mirror
    bool compared = false;            // a read's answer is offered to the shadow comparer
    bool frozen = false;              // a write is refused instead of forwarded
    std::uint32_t retry_after_s = 0;  // frozen: seconds until the freeze window ends (>= 1)
};

// What the stage of the route's user (plan.hpp) means for one request (design.md §1): off
// forwards only; dualwrite also mirrors writes; shadow also compares reads. A write of a cohort
// the plan's freeze window covers at `now` is frozen. Pure.
decision decide(const plan& p, const v1::route& route, wall_clock::time_point now);

// Whether any request under `p` is mirrored / compared: the mirror and the comparer run only
// then.
bool mirrors_writes(const plan& p);
bool compares_reads(const plan& p);

class router {
public:
    explicit router(plan initial);
    router(const router&) = delete;
    router& operator=(const router&) = delete;

    // The decision for `route` under the current plan, now. Lock-free; safe from any thread.
    decision decide(const v1::route& route) const;

    // The plan in force now.
    const plan& current() const;

    // Replaces the plan; requests already decided keep their decision. Returns the installed
    // plan. A plan read from the control tables keeps its stored version.
    const plan& install(plan next);

private:
    // Plans are never freed while the router lives: a session may still read the one it loaded,
    // and a plan changes a handful of times in a migration, so keeping them costs nothing and
    // spares the request path a reference count.
    mutable std::mutex install_mu_;
    std::deque<std::unique_ptr<const plan>> plans_;
    std::atomic<const plan*> current_;
};

}  // namespace sg::routing
