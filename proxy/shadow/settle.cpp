// proxy/shadow/settle: see the header.
#include "proxy/shadow/settle.hpp"

#include <algorithm>

namespace sg::proxy::shadow_logic {

std::chrono::milliseconds reread_backoff(int attempts) {
    return settle_poll * (1 << std::clamp(attempts - 1, 0, 4));
}

bool in_step(std::string_view storage_token, std::string_view dolt_token) {
    return storage_token != "unreadable" && dolt_token == storage_token;
}

settle_state first_look(settle_clock::time_point now, std::chrono::milliseconds timeout,
                        std::string storage_token, std::string_view dolt_token) {
    settle_state s;
    s.until = now + timeout;
    s.due = now;
    s.in_step = in_step(storage_token, dolt_token);
    s.token = std::move(storage_token);
    return s;
}

settle_action next_action(const settle_state& s, settle_clock::time_point now) {
    if (now >= s.until) return settle_action::give_up;
    if (s.in_step) return settle_action::reread;
    return s.polled ? settle_action::look : settle_action::ask_mirror;
}

void asked_mirror(settle_state& s, settle_clock::time_point now) {
    s.polled = true;
    s.due = now + settle_poll;
}

void looked(settle_state& s, std::string storage_token, std::string_view dolt_token) {
    s.polled = false;
    s.in_step = in_step(storage_token, dolt_token);
    s.token = std::move(storage_token);
}

void reread_started(settle_state& s) { ++s.attempts; }

void reread_held_back(settle_state& s, settle_clock::time_point now) {
    s.in_step = false;
    s.polled = true;
    s.due = now + settle_poll;
}

reread_verdict after_reread(settle_state& s, std::string_view storage_after,
                            std::string_view dolt_token, settle_clock::time_point now) {
    if (storage_after == s.token && dolt_token == s.token) return reread_verdict::compare;
    // Look again later, the longer the more often it moved (writes are hot).
    s.in_step = false;
    s.polled = true;
    s.due = now + reread_backoff(s.attempts);
    return reread_verdict::moved;
}

}  // namespace sg::proxy::shadow_logic
