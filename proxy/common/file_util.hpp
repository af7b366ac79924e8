// proxy/common/file_util: small file operations the services and commands share.
#pragma once

#include "proxy/common/result.hpp"

#include <string>

namespace sg::proxy {

// Replaces `path` with `text` atomically: a temporary file beside it, fsync, rename.
[[nodiscard]] result<> write_atomically(const std::string& path, const std::string& text);

}  // namespace sg::proxy
