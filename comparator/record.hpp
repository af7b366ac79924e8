// comparator/record: one discrepancy as it is kept (the admin ring) and written (the JSONL
// file): when, which request, which endpoint and user, the class, the differences with both
// values, and both answers, with body text redacted as configured. Pure.
#pragma once

#include "comparator/compare.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace sg::comparator {

struct redaction {
    // Every string value in bodies and differences becomes "[redacted N bytes]".
    bool all_strings = false;
    // String values under these object keys (anywhere) are redacted ("content", "body", ...).
    std::vector<std::string> fields;
    bool active() const { return all_strings || !fields.empty(); }
};

struct discrepancy {
    std::int64_t time_ms = 0;  // Unix time of the comparison's end, milliseconds
    std::string request_id;
    std::string endpoint;  // the route's name ("get_block")
    std::string user;
    std::string target;     // the request target (path and query)
    std::string v2_source;  // "dolt" or "v2_http"
    result what = result::mismatch;
    diff_result diff;
    unsigned v1_status = 0;
    std::string v1_body;
    unsigned v2_status = 0;
    std::string v2_body;
    int attempts = 1;  // comparisons made (more than 1: re-read after the mirror settled)
};

// The record as one JSON object (the JSONL line, the admin listing's element). Bodies that are
// JSON are embedded as JSON, others as strings.
json to_json(const discrepancy& d, const redaction& r = {});

// `v` with strings redacted per `r` (under_field: the value sits under a redacted key).
json redacted(const json& v, const redaction& r, bool under_field = false);

}  // namespace sg::comparator
