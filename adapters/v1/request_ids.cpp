// adapters/v1/request_ids: see the header.
#include "adapters/v1/request_ids.hpp"

#include <nlohmann/json.hpp>

namespace sg::v1 {

std::optional<std::string> body_problem(endpoint e, std::string_view body) {
    const char* field = nullptr;
    const char* (*problem_of)(std::string_view) = nullptr;
    if (e == endpoint::user_init) {
        field = "user_id";
        problem_of = identifier_problem;
    } else if (e == endpoint::restore_version) {
        field = "commit_sha";
        problem_of = revision_problem;
    } else {
        return std::nullopt;
    }
    if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return std::nullopt;

    using json = nlohmann::json;
    int seen = 0;  // how often `field` is a key of the top-level object
    const json::parser_callback_t count_field = [&](int depth, json::parse_event_t event,
                                                    json& parsed) {
        if (event == json::parse_event_t::key && depth == 1 && parsed == field) ++seen;
        return true;
    };
    json doc;
    try {
        doc = json::parse(body.begin(), body.end(), count_field);
    } catch (const json::exception&) {  // parse_error, and out_of_range for 1e999
        return std::string(
                   "body is not strict JSON (UTF-8, no NaN, no lone "
                   "surrogate); v1's "
                   "parser could read a ") +
               field + " in it that shadowgate cannot check";
    }
    if (seen > 1) return std::string("body has \"") + field + "\" more than once";
    if (!doc.is_object()) return std::nullopt;
    const auto it = doc.find(field);
    if (it == doc.end() || !it->is_string()) return std::nullopt;
    if (const char* p = problem_of(it->get_ref<const std::string&>())) {
        return std::string(field) + " in the body " + p;
    }
    return std::nullopt;
}

}  // namespace sg::v1
