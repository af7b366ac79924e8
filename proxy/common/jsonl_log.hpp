// proxy/common/jsonl_log: an append-only file of JSON lines with size-based rotation: when a line
// would take the file past max_bytes, file.{keep-1} is dropped, file.{i} becomes file.{i+1}, the
// file becomes file.1 and a new one starts. A line is never split across files. Blocking file I/O:
// call it from a worker thread, never from the proxy's event loops.
#pragma once

#include "proxy/common/result.hpp"

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

namespace sg::proxy {

class jsonl_log {
public:
    // Nothing is opened until the first append. keep: rotated files kept (0: none kept).
    jsonl_log(std::string path, std::size_t max_bytes, int keep);
    ~jsonl_log();
    jsonl_log(const jsonl_log&) = delete;
    jsonl_log& operator=(const jsonl_log&) = delete;

    // Appends `line` and a newline (the line must hold no newline). A failure is the caller's
    // to count; a failed write is retried with the next line. Thread-safe.
    [[nodiscard]] result<> append(std::string_view line);

    std::uint64_t rotations() const;

private:
    result<> rotate_locked();
    result<> open_locked();

    std::string path_;
    std::size_t max_;
    int keep_;
    mutable std::mutex mu_;
    int fd_ = -1;
    std::size_t size_ = 0;
    std::uint64_t rotations_ = 0;
};

}  // namespace sg::proxy
