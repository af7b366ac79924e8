// proxy/routing/router: the stage's meaning per request, and the atomically replaced plan.
#include "proxy/routing/router.hpp"

#include <algorithm>

namespace sg::routing {

decision decide(const plan& p, const v1::route& route, wall_clock::time_point now) {
    decision d;
    const cohort* c = cohort_of(p, route.user_id);
    const config::stage s = c == nullptr ? p.default_stage : c->stage;
    switch (s) {
        case config::stage::off: break;
        case config::stage::dualwrite: d.mirrored = route.write; break;
        case config::stage::shadow:
            d.mirrored = route.write;
            d.compared = !route.write && v1::is_block_read(route.ep);
            break;
    }
    if (route.write && p.freeze &&
        p.freeze->freezes(c == nullptr ? default_cohort : std::string_view(c->name), now)) {
        d.frozen = true;
        const auto left = std::chrono::ceil<std::chrono::seconds>(p.freeze->until - now);
        d.retry_after_s = static_cast<std::uint32_t>(std::max<std::int64_t>(1, left.count()));
    }
    return d;
}

bool mirrors_writes(const plan& p) {
    const auto stages = stages_in(p);
    return std::any_of(stages.begin(), stages.end(),
                       [](config::stage s) { return s != config::stage::off; });
}

bool compares_reads(const plan& p) {
    const auto stages = stages_in(p);
    return std::find(stages.begin(), stages.end(), config::stage::shadow) != stages.end();
}

router::router(plan initial) : current_(nullptr) {
    plans_.push_back(std::make_unique<const plan>(initial));
    current_.store(plans_.back().get(), std::memory_order_release);
}

decision router::decide(const v1::route& route) const {
    const plan& p = *current_.load(std::memory_order_acquire);
    // The clock is read only when a freeze window is set: the common path costs no syscall.
    const auto now = p.freeze ? wall_clock::now() : wall_clock::time_point{};
    return routing::decide(p, route, now);
}

const plan& router::current() const { return *current_.load(std::memory_order_acquire); }

const plan& router::install(plan next) {
    std::lock_guard lock(install_mu_);
    plans_.push_back(std::make_unique<const plan>(next));
    current_.store(plans_.back().get(), std::memory_order_release);
    return *plans_.back();
}

}  // namespace sg::routing
