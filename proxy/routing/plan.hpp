// proxy/routing/plan: which stage serves each user. A plan is an ordered list of cohorts, each
// with a stage: a list of explicit user ids, or a percentage of users chosen by a stable hash of
// the user id. A user belongs to the first cohort that selects it; every other user, and every
// request that names no user, follows the plan's default stage ("the rest"). A freeze window,
// when set, refuses writes of the cohorts it names until it ends. Pure data and pure functions.
#pragma once

#include "config/config.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sg::routing {

using wall_clock = std::chrono::system_clock;

// The name a freeze (and the history) uses for the users of no cohort and requests with no user.
inline constexpr std::string_view default_cohort = "default";

// Hash buckets of the percentage selector: a user's bucket is fixed (bucket_of), and a cohort of
// P percent selects the buckets below P * 100, so a user selected at 1% stays selected as the
// percentage grows to 100% (sticky), and leaves only when it shrinks below its bucket.
inline constexpr std::uint32_t bucket_count = 10'000;

// 0 .. bucket_count-1: FNV-1a (64 bit) of the user id's bytes, modulo bucket_count. Part of the
// meaning of every stored plan: never change it.
std::uint32_t bucket_of(std::string_view user_id);

struct cohort {
    enum class kind : std::uint8_t { users, percent };

    std::string name;  // unique in the plan, not "default"
    config::stage stage = config::stage::off;
    kind selects = kind::users;
    std::vector<std::string> users;  // kind users: sorted, without duplicates
    std::uint32_t basis_points = 0;  // kind percent: 0..10000 (1% = 100)

    bool selects_user(std::string_view user_id) const;
    bool operator==(const cohort&) const = default;
};

struct freeze_window {
    wall_clock::time_point until;
    std::vector<std::string> cohorts;  // the cohorts frozen (names; "default"); empty: all
    std::string reason;
    bool operator==(const freeze_window&) const = default;

    bool freezes(std::string_view cohort_name, wall_clock::time_point now) const;
};

struct plan {
    // Counts up with every change that is stored; 0 for a plan never stored (the config's).
    std::uint64_t version = 0;
    config::stage default_stage = config::stage::off;
    std::vector<cohort> cohorts;
    std::optional<freeze_window> freeze;

    // The plan of one stage for everybody.
    static plan of(config::stage s, std::uint64_t version = 0);
    bool operator==(const plan&) const = default;
};

// The cohort `user_id` belongs to, or nullptr for the default (an empty id: nullptr).
const cohort* cohort_of(const plan& p, std::string_view user_id);
// The name of that cohort ("default" for nullptr).
std::string_view cohort_name_of(const plan& p, std::string_view user_id);
config::stage stage_of(const plan& p, std::string_view user_id);

// Every stage some user (or a request without one) can be in under `p`: the default and each
// cohort's, once each, in stage order.
std::vector<config::stage> stages_in(const plan& p);

// The problems that make `p` unusable, each with its JSON path ("$.cohorts[1].name: ..."):
// duplicate or reserved cohort names, an empty users list, a percentage outside 0..100, a user id
// that v1 would refuse. Empty when `p` is valid.
std::vector<std::string> plan_problems(const plan& p);

}  // namespace sg::routing
