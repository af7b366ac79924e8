// adapters/git/safe_fs: the filesystem calls the v1 storage reader makes, relative to directory
// descriptors and never following a symlink, so that nothing a user directory holds can make the
// reader open a file outside the data directory (v1-contract.md §2). POSIX (Linux) only.
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/git/errors.hpp"

namespace sg::git {

// An owned file descriptor, closed on destruction.
class unique_fd {
public:
    unique_fd() = default;
    explicit unique_fd(int fd) : fd_(fd) {}
    unique_fd(unique_fd&& o) noexcept : fd_(o.release()) {}
    unique_fd& operator=(unique_fd&& o) noexcept;
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    ~unique_fd();

    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    int release() {
        const int fd = fd_;
        fd_ = -1;
        return fd;
    }

private:
    int fd_ = -1;
};

// Opens the directory `path` (absolute, symlinks in it are followed: this is the configured data
// dir). Errors: not_found, unsafe_path (not a directory), io.
result<unique_fd> open_root_dir(const std::string& path);

// Opens the directory `name` (one path component) inside `dir_fd`, refusing a symlink there.
// Errors: not_found (absent), unsafe_path (a symlink or not a directory), io. `what` names the
// directory in messages.
result<unique_fd> open_subdir(int dir_fd, const std::string& name, std::string_view what);

// Opens `rel_path` ("a/b/c", no "." or ".." components) below `dir_fd` for reading, refusing a
// symlink at every component; the file must be a regular file. Errors as open_subdir.
result<unique_fd> open_file_beneath(int dir_fd, std::string_view rel_path, std::string_view what);

// Reads a regular file from its current offset to its end. Errors: io (read error, or larger than
// max_bytes).
result<std::string> read_all(int fd, std::size_t max_bytes, std::string_view what);

// lstat() of `name` inside `dir_fd`: true with `st` filled, false when absent; errors: io.
result<bool> stat_at(int dir_fd, const std::string& name, struct stat& st, std::string_view what);

struct dir_entry {
    std::string name;
    unsigned char type = 0;  // d_type (DT_UNKNOWN on some filesystems: then lstat it)
};

// The entries of the directory open at `dir_fd`, without "." and "..", in readdir order. The
// descriptor's own offset is not used (the directory is reopened), so it can be listed again.
result<std::vector<dir_entry>> list_dir(int dir_fd, std::string_view what);

}  // namespace sg::git
