// proxy/mirror/mirror_logic: the mirror's decisions, kept free of I/O so they can be tested
// exactly: what a v1 write answer says (which user, which commit), which users are due and when,
// how long a failing user waits (back-off with jitter), when to stop calling a dead Dolt (the
// circuit breaker), and which commits of a user are new since its watermark and in what order. Time
// is always passed in; nothing here reads a clock, a file or a socket.
#pragma once

#include "adapters/v1/model.hpp"
#include "adapters/v1/routes.hpp"

#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sg::proxy::mirror_logic {

using clock = std::chrono::steady_clock;
using time_point = clock::time_point;
using std::chrono::milliseconds;

// ---- triggers -------------------------------------------------------------------------------

struct trigger {
    std::string user_id;
    std::optional<std::string> commit_sha;  // the commit v1 said it made, when it said one
};

// What a v1 answer to `route` means for the mirror: a 2xx answer to a write endpoint (PUT block,
// restore, approve, reject, user init) names a user whose storage may have changed. The user id
// comes from the path, or for POST /users/init from the answer's "user_id"; the commit from the
// answer's "commit_sha" when it has one. nullopt for reads, non-2xx answers, and answers that do
// not name a safe user id.
std::optional<trigger> trigger_of(const v1::route& route, unsigned status, std::string_view body);

// ---- back-off -------------------------------------------------------------------------------

// The wait before retry number `attempt` (1 = the first retry): initial * 2^(attempt-1), capped
// at `max`, then scaled by `jitter` in [0, 1) to between 50% and 150% of that (and capped at max
// again), so that many users failing together do not retry in lockstep.
milliseconds backoff(int attempt, milliseconds initial, milliseconds max, double jitter);

// ---- circuit breaker ------------------------------------------------------------------------

// Stops the mirror from hammering a Dolt it cannot reach: after `threshold` consecutive
// connection failures the circuit opens for `cooldown`; then one attempt is let through (half
// open): success closes it, failure opens it again for twice as long, up to `max_cooldown`.
class breaker {
public:
    enum class state { closed, open, half_open };

    breaker(int threshold, milliseconds cooldown, milliseconds max_cooldown);

    // May the caller talk to Dolt now? An open circuit whose time is up turns half open and
    // allows one attempt.
    bool allow(time_point now);
    void success();
    void failure(time_point now);  // a failure to reach Dolt (not a data error)

    state current() const { return state_; }
    int consecutive_failures() const { return failures_; }
    time_point open_until() const { return open_until_; }
    std::uint64_t opens() const { return opens_; }

private:
    int threshold_;
    milliseconds initial_;
    milliseconds max_;
    milliseconds cooldown_;
    state state_ = state::closed;
    int failures_ = 0;
    time_point open_until_{};
    std::uint64_t opens_ = 0;
};

std::string_view name(breaker::state s);

// ---- the dirty set --------------------------------------------------------------------------

// A user with changes Dolt may not have yet. At most one entry per user, so memory is bounded by
// the number of users however long Dolt stays away; bursts for one user coalesce into one pass.
struct dirty_entry {
    time_point since;                       // when the oldest unmirrored change was noticed
    std::optional<std::string> commit_sha;  // the newest commit a trigger named
    int attempts = 0;                       // failed passes so far
    time_point not_before{};                // back-off: not due before this
    std::string last_error;
    bool in_flight = false;     // a pass is running for it
    bool marked_again = false;  // marked while in flight: run again after
    time_point marked_again_at{};
};

// A user whose pass failed permanently (bad data, a corrupt repository): left alone until its
// storage changes (another HEAD or pending_diffs fingerprint) or an operator retries it.
struct parked_entry {
    std::string error;
    std::chrono::system_clock::time_point since;
    std::string head;         // v1's HEAD when it failed ("" when unknown)
    std::string fingerprint;  // pending_diffs/ fingerprint when it failed
    time_point parked_at{};   // steady clock, for the periodic retry
};

class dirty_set {
public:
    // Notes a change for `user` at `now`. Parked users are unparked by a mark (a new write may
    // well fix what failed). Returns true when the user was not dirty before.
    bool mark(const std::string& user, time_point now,
              std::optional<std::string> commit_sha = std::nullopt);

    // The user to work on next: due (not_before <= now), not in flight, oldest `since` first.
    // Marks it in flight. nullopt when none is due.
    std::optional<std::string> take(time_point now);
    // When the next entry becomes due (for the worker's sleep); nullopt when nothing waits.
    std::optional<time_point> next_due() const;

    // The pass for `user` succeeded: the entry goes away, unless it was marked again meanwhile
    // (then it stays, due at once, `since` = when it was marked again).
    void done(const std::string& user);
    // The pass failed and will be retried after `wait`; `count_attempt` false for failures that
    // are not the user's fault (Dolt unreachable).
    void retry(const std::string& user, time_point now, milliseconds wait, std::string error,
               bool count_attempt = true);
    // The pass failed permanently: the user leaves the dirty set for the parked list.
    void park(const std::string& user, parked_entry p);
    // Puts parked users back in the dirty set (all when `user` is empty); returns how many.
    std::size_t unpark(const std::string& user, time_point now);
    // Parked users whose park is older than `before` (due for their periodic retry).
    std::vector<std::string> parked_before(time_point before) const;
    // Forgets a parked user without marking it (the scan found Dolt equal to v1 again).
    bool forget_parked(const std::string& user) { return parked_.erase(user) > 0; }
    // Whether a parked user's storage moved on from what failed (the capture scan asks).
    bool parked_and_changed(const std::string& user, std::string_view head,
                            std::string_view fingerprint) const;

    bool contains(const std::string& user) const { return dirty_.count(user) != 0; }
    bool is_parked(const std::string& user) const { return parked_.count(user) != 0; }
    std::size_t size() const { return dirty_.size(); }
    std::size_t parked_count() const { return parked_.size(); }
    // Age of the oldest unmirrored change; zero when nothing is dirty.
    std::chrono::duration<double> oldest_age(time_point now) const;

    const std::map<std::string, dirty_entry>& entries() const { return dirty_; }
    const std::map<std::string, parked_entry>& parked() const { return parked_; }

private:
    std::map<std::string, dirty_entry> dirty_;
    std::map<std::string, parked_entry> parked_;
};

// ---- recently applied states -------------------------------------------------------------------

// The most recently used values by key within a byte budget (the caller says what each value
// costs): the mirror keeps here the state it last applied for each user it wrote recently. A value
// larger than the whole budget is not kept.
template <class V>
class recent_cache {
public:
    explicit recent_cache(std::size_t budget_bytes) : budget_(budget_bytes) {}

    // The value for `key`, now the most recently used; null when absent.
    V* find(const std::string& key) {
        const auto it = index_.find(key);
        if (it == index_.end()) return nullptr;
        order_.splice(order_.begin(), order_, it->second);
        return &it->second->value;
    }
    // Keeps `value` for `key` (replacing an older one), then drops the least recently used
    // values until the total is within the budget.
    void put(const std::string& key, V value, std::size_t bytes) {
        erase(key);
        if (budget_ == 0 || bytes > budget_) return;
        order_.push_front(item{key, std::move(value), bytes});
        index_.emplace(key, order_.begin());
        bytes_ += bytes;
        while (bytes_ > budget_) {
            bytes_ -= order_.back().bytes;
            index_.erase(order_.back().key);
            order_.pop_back();
        }
    }
    bool erase(const std::string& key) {
        const auto it = index_.find(key);
        if (it == index_.end()) return false;
        bytes_ -= it->second->bytes;
        order_.erase(it->second);
        index_.erase(it);
        return true;
    }
    void clear() {
        order_.clear();
        index_.clear();
        bytes_ = 0;
    }
    std::size_t bytes() const { return bytes_; }
    std::size_t size() const { return index_.size(); }

private:
    struct item {
        std::string key;
        V value;
        std::size_t bytes;
    };
    std::size_t budget_;
    std::size_t bytes_ = 0;
    std::list<item> order_;  // most recently used first
    std::unordered_map<std::string, typename std::list<item>::iterator> index_;
};

// ---- what is new since the watermark ----------------------------------------------------------

struct history_plan {
    // The watermark commit is not in v1's history any more (a rewrite: reset, amend, rebase):
    // the user must be re-imported whole.
    bool rewritten = false;
    // Commits after the watermark, oldest first (the order git made them in: parents before
    // children, ties in reverse rev-list order). Empty when HEAD is the watermark.
    std::vector<const v1::commit*> new_commits;
};

// Compares v1's state with the watermark's commit ("" when the user was never mirrored: then
// every commit is new).
history_plan plan_history(const v1::user_state& state, std::string_view watermark_commit);

}  // namespace sg::proxy::mirror_logic
