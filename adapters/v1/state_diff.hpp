// adapters/v1/state_diff: compares two views of one user's v1 storage (typically what git holds
// and what Dolt holds) and lists every difference, keyed so that a person can find it. Pure; the
// basis of `migrate --verify` and of reconcile's drift report.
#pragma once

#include "adapters/v1/model.hpp"

#include <string>
#include <vector>

namespace sg::v1 {

struct drift {
    enum class kind { missing, extra, different };
    kind what_kind;      // missing: in `expected` only; extra: in `actual` only; different: both
    std::string item;    // "user", "commit", "block", "version", "diff"
    std::string key;     // sha, label, "label@sha", diff id ("" for the user itself)
    std::string detail;  // which field differs and how, for different; empty otherwise
};

std::string_view name(drift::kind k);  // "missing", "extra", "different"

// Every difference between `expected` (v1) and `actual` (v2), in a stable order: user fields,
// commits (by sha), blocks (by label), versions (by label, sha), diffs (by id). Empty when the
// two states are equal in every byte that matters, including orders (seq, ordinal).
std::vector<drift> diff_states(const user_state& expected, const user_state& actual);

// "different block student: source (v1 120 bytes, v2 118 bytes)" and the like.
std::string to_string(const drift& d);

}  // namespace sg::v1
