// adapters/v1/request_ids: the identifiers a v1 write carries in its JSON body, checked with the
// rules of path identifiers before v1 sees them. v1 validates nothing: POST /users/init
// {"user_id": "../escaped"} makes a git repository outside its data dir (v1-contract.md §3).
#pragma once

#include "adapters/v1/routes.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace sg::v1 {

// Why the body of a request for `e` is unsafe to hand to v1, or nullopt:
//  - user_init: "user_id" must pass identifier_problem; restore_version: "commit_sha" must pass
//    revision_problem. Only strings are checked: pydantic 1 turns a number or a bool into its
//    str() (always safe) and refuses everything else with 422.
//  - The body must be strict JSON (UTF-8, no NaN, no lone surrogate, that field at most once):
//    v1 reads bodies with Python's json, which also reads UTF-16 and UTF-32, NaN and "\ud800" and
//    lets the last of two equal keys win, so a body shadowgate cannot read exactly as v1 does
//    might carry an id nobody checked.
// An empty body or a JSON value that is not an object carries no id (v1 answers 422). Pure.
std::optional<std::string> body_problem(endpoint e, std::string_view body);

}  // namespace sg::v1
