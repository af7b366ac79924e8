// proxy/routing/router: the stage's meaning per request, and the atomically replaced plan.
#include "proxy/routing/router.hpp"

namespace sg::routing {

decision decide(const plan& p, const v1::route& route) {
    decision d;
    switch (p.stage) {
        case config::stage::off: break;
        case config::stage::dualwrite: d.mirrored = route.write; break;
        case config::stage::shadow:
            d.mirrored = route.write;
            d.compared = !route.write && v1::is_block_read(route.ep);
            break;
    }
    return d;
}

bool mirrors_writes(const plan& p) { return p.stage != config::stage::off; }

bool compares_reads(const plan& p) { return p.stage == config::stage::shadow; }

router::router(plan initial) : current_(nullptr) {
    plans_.push_back(std::make_unique<const plan>(initial));
    current_.store(plans_.back().get(), std::memory_order_release);
}

decision router::decide(const v1::route& route) const {
    return routing::decide(*current_.load(std::memory_order_acquire), route);
}

const plan& router::current() const { return *current_.load(std::memory_order_acquire); }

const plan& router::install(plan next) {
    std::lock_guard lock(install_mu_);
    next.version = plans_.back()->version + 1;
    plans_.push_back(std::make_unique<const plan>(next));
    current_.store(plans_.back().get(), std::memory_order_release);
    return *plans_.back();
}

}  // namespace sg::routing
