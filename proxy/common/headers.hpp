// proxy/common/headers: a request's or response's header fields as plain strings, for the parts
// that carry them without Beast (the shadow comparer, the HTTP client's callers).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace sg::proxy {

// name, value; in the order received, duplicates kept.
using header_list = std::vector<std::pair<std::string, std::string>>;

}  // namespace sg::proxy
