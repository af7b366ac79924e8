// proxy/mirror/schedule: see the header.
#include "proxy/mirror/schedule.hpp"

#include <algorithm>
#include <unordered_set>

namespace sg::proxy::mirror_logic {

schedule::schedule(const schedule_policy& p)
    : circuit(p.breaker_threshold, p.breaker_cooldown, p.retry_max), policy_(p) {}

schedule::step schedule::next(time_point now, std::optional<time_point> interval_due) {
    step s;
    if (circuit.allow(now)) {
        if (auto u = dirty.take(now)) {
            s.since = dirty.entries().at(*u).since;
            s.user = std::move(u);
            in_pass_ = true;
            return s;
        }
    }
    // Sleep until something is due, the circuit may close, or the interval ends; look again
    // within a second whatever happens.
    auto until = now + std::chrono::seconds(1);
    if (auto due = dirty.next_due()) until = std::min(until, *due);
    if (circuit.current() == breaker::state::open) until = std::max(until, circuit.open_until());
    if (interval_due) until = std::min(until, *interval_due);
    s.wake_at = std::max(until, now + milliseconds(1));
    return s;
}

schedule::finished schedule::finish(const std::string& user, time_point since,
                                    const pass_outcome& o, time_point now,
                                    std::chrono::system_clock::time_point wall, double jitter) {
    finished f;
    in_pass_ = false;
    switch (o.result) {
        case pass_result::applied:
        case pass_result::unchanged:
            circuit.success();
            lags_.push_back(std::chrono::duration<double>(now - since).count());
            if (lags_.size() > policy_.lag_samples) lags_.pop_front();
            dirty.done(user);
            break;
        case pass_result::unreachable:
            // Not the user's fault: no attempt counted, due again as soon as the circuit lets.
            circuit.failure(now);
            f.retry_counted = true;
            dirty.retry(user, now, milliseconds(0), o.error, /*count_attempt=*/false);
            f.circuit_opened = circuit.current() == breaker::state::open;
            f.reset_schema = true;
            break;
        case pass_result::retry:
            circuit.success();
            f.retry_counted = true;
            f.attempt = dirty.entries().at(user).attempts + 1;
            f.wait = backoff(f.attempt, policy_.retry_initial, policy_.retry_max, jitter);
            dirty.retry(user, now, f.wait, o.error);
            break;
        case pass_result::parked:
            circuit.success();
            dirty.park(user, parked_entry{o.error, wall, o.head, o.fingerprint, now});
            // A session keeps the settings it started with (max_allowed_packet among them):
            // the next attempt starts a new one, so an operator's fix counts.
            f.forget_session = true;
            f.reset_schema = true;
            break;
    }
    return f;
}

schedule::scan_effect schedule::scanned(std::span<const std::string> listed,
                                        std::span<const observed> changed, time_point now) {
    scan_effect e;
    // A parked user that now matches its watermark (its storage was repaired back to what Dolt
    // has) is in step again: no longer parked.
    std::unordered_set<std::string_view> differing;
    for (const auto& c : changed) differing.insert(c.user);
    // A parked user that no longer exists in v1 storage has nothing left to mirror: its entry
    // would hold the gate's parked_users criterion shut until a restart.
    std::vector<std::string> settled;
    for (const auto& [user, p] : dirty.parked()) {
        if (!std::binary_search(listed.begin(), listed.end(), user)) {
            e.gone.push_back(user);
        } else if (!differing.count(user)) {
            settled.push_back(user);
        }
    }
    for (const auto& user : settled) dirty.forget_parked(user);
    for (const auto& user : e.gone) dirty.forget_parked(user);
    // Parked long enough: try again whatever the storage says.
    for (const auto& user : dirty.parked_before(now - policy_.parked_retry)) {
        dirty.mark(user, now);
        ++e.parked_retries;
    }
    for (const auto& c : changed) {
        if (dirty.is_parked(c.user) && !dirty.parked_and_changed(c.user, c.head, c.fingerprint)) {
            continue;
        }
        if (dirty.mark(c.user, now)) ++e.found;
    }
    scanned_once_ = true;
    return e;
}

}  // namespace sg::proxy::mirror_logic
