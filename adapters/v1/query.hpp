// adapters/v1/query: Starlette's reading of a request-target's query string, as v1 (FastAPI)
// sees its parameters. Pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sg::v1 {

// The decoded value of the last `name` parameter in the query of `target` (Starlette's reading:
// "%XX" decoded, "+" is a space); nullopt when absent.
std::optional<std::string> query_param(std::string_view target, std::string_view name);
// Every value of `name` in the query, in order, decoded the same way.
std::vector<std::string> query_params(std::string_view target, std::string_view name);

}  // namespace sg::v1
