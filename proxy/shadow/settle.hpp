// proxy/shadow/settle: settle-and-reread, the state machine a comparison goes through when its
// first look cannot decide (Dolt behind v1's storage, or the answers differ). It waits until
// Dolt's watermark equals v1 storage's token (asking the mirror to look, then polling), then has
// v1 read again and judges the two answers only if neither side moved around the re-read; it
// gives up (unsettled) at its deadline. Pure: the caller passes the time and the tokens it read,
// carries out the action asked for (ask the mirror, look, re-read, wait until `due`), so every
// path can be tested with an injected clock.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace sg::proxy::shadow_logic {

using settle_clock = std::chrono::steady_clock;

// How often a settling comparison looks at both sides again.
inline constexpr std::chrono::milliseconds settle_poll{20};

// After v1's storage moved during a re-read: the pause before looking again, doubling from
// settle_poll per re-read up to 16 times it (hot writes cost a few re-reads, not one per poll).
std::chrono::milliseconds reread_backoff(int attempts);

// Whether Dolt holds the state v1's storage is at: equal tokens, and a storage token that could
// be read at all.
bool in_step(std::string_view storage_token, std::string_view dolt_token);

struct settle_state {
    settle_clock::time_point until;  // the first look + shadow.settle_timeout
    settle_clock::time_point due;    // when to look again
    int attempts = 1;                // reads of v1 so far (the served answer counts)
    std::string token;               // v1 storage's token last seen
    bool in_step = false;            // Dolt's watermark equals `token`
    bool polled = false;             // the mirror was asked and the poll interval has passed
};

// After the first look: `storage_token` read before asking the target, whose state was
// `dolt_token`. Not done yet: settling has `timeout` to find out.
settle_state first_look(settle_clock::time_point now, std::chrono::milliseconds timeout,
                        std::string storage_token, std::string_view dolt_token);

enum class settle_action {
    give_up,     // the deadline passed: unsettled
    ask_mirror,  // ask the mirror to look at the user, then wait until `due` (asked_mirror)
    look,        // read both tokens now (looked), then ask again
    reread,      // in step: read v1 again (reread_started, or reread_held_back at the limit)
};

// What to do next when no re-read answer is waiting to be judged.
settle_action next_action(const settle_state& s, settle_clock::time_point now);

void asked_mirror(settle_state& s, settle_clock::time_point now);
void looked(settle_state& s, std::string storage_token, std::string_view dolt_token);
void reread_started(settle_state& s);
// Too many re-reads on their way: poll again instead.
void reread_held_back(settle_state& s, settle_clock::time_point now);

enum class reread_verdict {
    moved,    // storage or Dolt moved around the re-read: wait (backed off) and look again
    compare,  // both still at the token: the re-read and the target's answer are comparable
};
// v1's re-read is back; `storage_after` is storage's token read after it, `dolt_token` the state
// of the target's answer asked after it.
reread_verdict after_reread(settle_state& s, std::string_view storage_after,
                            std::string_view dolt_token, settle_clock::time_point now);

}  // namespace sg::proxy::shadow_logic
