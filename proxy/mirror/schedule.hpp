// proxy/mirror/schedule: the mirror's worker as a state machine. It holds the dirty set, the
// circuit breaker and the recent lag samples, and decides which user to pass next, how long to
// sleep, what a pass's outcome does (done, retry with back-off, park, open the circuit) and what
// a capture scan's findings change. Pure: the caller passes the time (steady and wall) and the
// jitter, and carries out what the answers say (logs, counters, closing a connection), so every
// transition can be tested with an injected clock.
#pragma once

#include "proxy/mirror/mirror_logic.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sg::proxy::mirror_logic {

// What one pass came to.
enum class pass_result { applied, unchanged, unreachable, retry, parked };

inline constexpr std::array<std::string_view, 5> pass_result_names{
    "applied", "unchanged", "unreachable", "retry", "parked"};

struct pass_outcome {
    pass_result result = pass_result::applied;
    std::string error;
    std::string head;         // v1's HEAD as read (for parking)
    std::string fingerprint;  // pending_diffs/ fingerprint as read
};

struct schedule_policy {
    int breaker_threshold = 5;
    milliseconds breaker_cooldown{1000};
    milliseconds retry_initial{100};
    milliseconds retry_max{30000};
    milliseconds parked_retry{600000};  // a parked user is tried again after this long
    std::size_t lag_samples = 4096;     // applied-lag samples kept for the percentiles
};

// A user's HEAD and pending_diffs/ fingerprint as the capture scan saw them ("" when unreadable).
struct observed {
    std::string user;
    std::string head;
    std::string fingerprint;
};

class schedule {
public:
    explicit schedule(const schedule_policy& p);

    // The worker's next step at `now`: a user to pass (taken: in flight until finish()), or
    // none and the time to look again. `interval_due` is when the interval commit policy wants
    // the worker awake (nullopt when nothing waits for it).
    struct step {
        std::optional<std::string> user;
        time_point since{};    // the user's oldest unmirrored change
        time_point wake_at{};  // when there is no user: sleep until then (or a wake-up)
    };
    step next(time_point now, std::optional<time_point> interval_due);

    // What finishing a pass asks of the caller, beyond the state change itself.
    struct finished {
        bool retry_counted = false;   // a retry (unreachable or retryable)
        bool circuit_opened = false;  // the failure left the circuit open: log it
        bool forget_session = false;  // parked: the next attempt starts a new database session
        bool reset_schema = false;    // check the schema again (a new server may need it)
        int attempt = 0;              // retry: the attempt about to be made
        milliseconds wait{0};         // retry: its back-off
    };
    // The pass for `user` (taken by next()) ended with `o` at `now` (`wall` for the parked
    // list); `jitter` in [0, 1) spreads the back-off.
    finished finish(const std::string& user, time_point since, const pass_outcome& o,
                    time_point now, std::chrono::system_clock::time_point wall, double jitter);

    // What a capture scan's findings did.
    struct scan_effect {
        std::size_t found = 0;           // users newly dirty
        std::size_t parked_retries = 0;  // parked users due for their periodic retry, marked
        std::vector<std::string> gone;   // parked users no longer in v1 storage, released
        bool wake_worker() const { return found > 0 || parked_retries > 0; }
    };
    // The scan listed `listed` (sorted) and found `changed` differing from their watermarks.
    scan_effect scanned(std::span<const std::string> listed, std::span<const observed> changed,
                        time_point now);

    // Every user scanned once, nothing dirty, no pass running.
    bool idle() const { return scanned_once_ && dirty.size() == 0 && !in_pass_; }
    bool scanned_once() const { return scanned_once_; }
    bool in_pass() const { return in_pass_; }
    const std::deque<double>& lags() const { return lags_; }  // seconds, most recent last

    // Marks and unparking go straight to the set; the breaker is read for status.
    dirty_set dirty;
    breaker circuit;

private:
    schedule_policy policy_;
    std::deque<double> lags_;
    bool in_pass_ = false;
    bool scanned_once_ = false;
};

}  // namespace sg::proxy::mirror_logic
