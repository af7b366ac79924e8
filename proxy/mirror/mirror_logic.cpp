// proxy/mirror/mirror_logic: see the header.
#include "proxy/mirror/mirror_logic.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <unordered_set>

namespace sg::proxy::mirror_logic {

std::optional<trigger> trigger_of(const v1::route& route, unsigned status, std::string_view body) {
    if (!route.write || status < 200 || status > 299 || route.hostile_reason) {
        return std::nullopt;
    }
    // v1's write answers are small JSON objects; anything else names no commit.
    const auto doc = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
    auto string_field = [&](const char* key) -> std::optional<std::string> {
        if (!doc.is_object()) return std::nullopt;
        auto it = doc.find(key);
        if (it == doc.end() || !it->is_string()) return std::nullopt;
        return it->get<std::string>();
    };
    trigger t;
    t.user_id = route.user_id;
    if (route.ep == v1::endpoint::user_init) {
        auto id = string_field("user_id");
        if (!id) return std::nullopt;
        t.user_id = std::move(*id);
    }
    if (!v1::is_safe_identifier(t.user_id)) {
        return std::nullopt;
    }
    if (auto sha = string_field("commit_sha")) {
        const bool hex = sha->size() == 40 && std::all_of(sha->begin(), sha->end(), [](char c) {
                             return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                         });
        if (hex) t.commit_sha = std::move(*sha);
    }
    return t;
}

milliseconds backoff(int attempt, milliseconds initial, milliseconds max, double jitter) {
    const int doublings = std::clamp(attempt - 1, 0, 30);
    const double base = std::min(static_cast<double>(max.count()),
                                 static_cast<double>(initial.count()) * std::ldexp(1.0, doublings));
    const double j = std::clamp(jitter, 0.0, 1.0);
    const double wait = std::min(static_cast<double>(max.count()), base * (0.5 + j));
    return milliseconds(static_cast<std::int64_t>(std::max(1.0, wait)));
}

breaker::breaker(int threshold, milliseconds cooldown, milliseconds max_cooldown)
    : threshold_(std::max(1, threshold)),
      initial_(cooldown),
      max_(std::max(cooldown, max_cooldown)),
      cooldown_(cooldown) {}

bool breaker::allow(time_point now) {
    switch (state_) {
        case state::closed: return true;
        case state::open:
            if (now >= open_until_) {
                state_ = state::half_open;
                return true;
            }
            return false;
        case state::half_open:
            return true;  // one caller, one attempt at a time: the probe is this attempt
    }
    return true;
}

void breaker::success() {
    state_ = state::closed;
    failures_ = 0;
    cooldown_ = initial_;
}

void breaker::failure(time_point now) {
    ++failures_;
    if (state_ == state::half_open || (state_ == state::closed && failures_ >= threshold_)) {
        if (state_ == state::half_open) {
            cooldown_ = std::min(max_, cooldown_ * 2);
        }
        state_ = state::open;
        open_until_ = now + cooldown_;
        ++opens_;
    }
}

std::string_view name(breaker::state s) {
    switch (s) {
        case breaker::state::closed: return "closed";
        case breaker::state::open: return "open";
        case breaker::state::half_open: return "half_open";
    }
    return "unknown";
}

bool dirty_set::mark(const std::string& user, time_point now,
                     std::optional<std::string> commit_sha) {
    parked_.erase(user);
    auto [it, inserted] = dirty_.try_emplace(user);
    dirty_entry& e = it->second;
    if (inserted) {
        e.since = now;
        e.not_before = now;
    } else if (e.in_flight && !e.marked_again) {
        e.marked_again = true;
        e.marked_again_at = now;
    }
    if (commit_sha) {
        e.commit_sha = std::move(commit_sha);
    }
    return inserted;
}

std::optional<std::string> dirty_set::take(time_point now) {
    const std::string* best = nullptr;
    const dirty_entry* best_e = nullptr;
    for (const auto& [user, e] : dirty_) {
        if (e.in_flight || e.not_before > now) continue;
        if (best_e == nullptr || e.since < best_e->since) {
            best = &user;
            best_e = &e;
        }
    }
    if (best == nullptr) return std::nullopt;
    dirty_[*best].in_flight = true;
    return *best;
}

std::optional<time_point> dirty_set::next_due() const {
    std::optional<time_point> due;
    for (const auto& [user, e] : dirty_) {
        if (e.in_flight) continue;
        if (!due || e.not_before < *due) due = e.not_before;
    }
    return due;
}

void dirty_set::done(const std::string& user) {
    auto it = dirty_.find(user);
    if (it == dirty_.end()) return;
    dirty_entry& e = it->second;
    if (e.marked_again) {
        const time_point again = e.marked_again_at;
        e = dirty_entry{};
        e.since = again;
        e.not_before = again;
        return;
    }
    dirty_.erase(it);
}

void dirty_set::retry(const std::string& user, time_point now, milliseconds wait, std::string error,
                      bool count_attempt) {
    auto it = dirty_.find(user);
    if (it == dirty_.end()) return;
    dirty_entry& e = it->second;
    e.in_flight = false;
    e.marked_again = false;  // the retry covers the newer change too
    if (count_attempt) ++e.attempts;
    e.not_before = now + wait;
    e.last_error = std::move(error);
}

void dirty_set::park(const std::string& user, parked_entry p) {
    dirty_.erase(user);
    parked_[user] = std::move(p);
}

std::size_t dirty_set::unpark(const std::string& user, time_point now) {
    std::vector<std::string> users;
    if (user.empty()) {
        for (const auto& [u, p] : parked_) users.push_back(u);
    } else if (parked_.count(user)) {
        users.push_back(user);
    }
    for (const auto& u : users) mark(u, now);
    return users.size();
}

std::vector<std::string> dirty_set::parked_before(time_point before) const {
    std::vector<std::string> out;
    for (const auto& [user, p] : parked_) {
        if (p.parked_at < before) out.push_back(user);
    }
    return out;
}

bool dirty_set::parked_and_changed(const std::string& user, std::string_view head,
                                   std::string_view fingerprint) const {
    auto it = parked_.find(user);
    return it != parked_.end() &&
           (it->second.head != head || it->second.fingerprint != fingerprint);
}

std::chrono::duration<double> dirty_set::oldest_age(time_point now) const {
    std::optional<time_point> oldest;
    for (const auto& [user, e] : dirty_) {
        if (!oldest || e.since < *oldest) oldest = e.since;
    }
    if (!oldest || *oldest > now) return std::chrono::duration<double>(0);
    return now - *oldest;
}

history_plan plan_history(const v1::user_state& state, std::string_view watermark_commit) {
    history_plan plan;
    std::unordered_map<std::string_view, const v1::commit*> by_sha;
    for (const auto& c : state.commits) by_sha.emplace(c.sha, &c);

    std::unordered_set<std::string_view> known;  // the watermark and its ancestors
    if (!watermark_commit.empty()) {
        auto start = by_sha.find(watermark_commit);
        if (start == by_sha.end()) {
            plan.rewritten = true;
            for (auto it = state.commits.rbegin(); it != state.commits.rend(); ++it) {
                plan.new_commits.push_back(&*it);
            }
            return plan;
        }
        std::vector<const v1::commit*> todo{start->second};
        while (!todo.empty()) {
            const v1::commit* c = todo.back();
            todo.pop_back();
            if (!known.insert(c->sha).second) continue;
            for (const auto& p : c->parents) {
                if (auto it = by_sha.find(p); it != by_sha.end()) todo.push_back(it->second);
            }
        }
    }
    // rev-list order (seq 0 = HEAD) lists children before parents; reversed, parents come first.
    std::vector<const v1::commit*> fresh;
    for (const auto& c : state.commits) {
        if (!known.count(c.sha)) fresh.push_back(&c);
    }
    std::sort(fresh.begin(), fresh.end(),
              [](const v1::commit* a, const v1::commit* b) { return a->seq > b->seq; });
    plan.new_commits = std::move(fresh);
    return plan;
}

}  // namespace sg::proxy::mirror_logic
