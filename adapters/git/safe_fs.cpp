// adapters/git/safe_fs: openat(O_NOFOLLOW) based file access below the data directory.
#include "adapters/git/safe_fs.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace sg::git {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

error io_error(std::string_view what, std::string_view op, int err) {
    return make_error(error_kind::io,
                      std::string(what) + ": " + std::string(op) + ": " + errno_text(err));
}

// Classifies a failed O_NOFOLLOW open of `name` inside dir_fd.
error open_failure(int dir_fd, const std::string& name, std::string_view what, int err,
                   bool want_dir) {
    if (err == ENOENT) return make_error(error_kind::not_found, std::string(what) + " not found");
    if (err == ELOOP || err == ENOTDIR || err == EISDIR) {
        struct stat st {};
        if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
            return make_error(error_kind::unsafe_path, std::string(what) + " is a symlink");
        }
        return make_error(error_kind::unsafe_path, std::string(what) + " is not a " +
                                                       (want_dir ? "directory" : "regular file"));
    }
    return io_error(what, "open", err);
}

}  // namespace

unique_fd& unique_fd::operator=(unique_fd&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = o.release();
    }
    return *this;
}

unique_fd::~unique_fd() {
    if (fd_ >= 0) ::close(fd_);
}

result<unique_fd> open_root_dir(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        const int err = errno;
        if (err == ENOENT) return make_error(error_kind::not_found, "data dir not found: " + path);
        if (err == ENOTDIR) {
            return make_error(error_kind::unsafe_path, "data dir is not a directory: " + path);
        }
        return io_error("data dir " + path, "open", err);
    }
    return unique_fd(fd);
}

result<unique_fd> open_subdir(int dir_fd, const std::string& name, std::string_view what) {
    const int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return open_failure(dir_fd, name, what, errno, true);
    return unique_fd(fd);
}

result<unique_fd> open_file_beneath(int dir_fd, std::string_view rel_path, std::string_view what) {
    unique_fd held;  // the intermediate directory, once one was opened
    int at = dir_fd;
    std::string_view rest = rel_path;
    while (true) {
        const auto slash = rest.find('/');
        const std::string part(rest.substr(0, slash));
        if (part.empty() || part == "." || part == "..") {
            return make_error(error_kind::unsafe_path, std::string(what) + ": bad path");
        }
        if (slash == std::string_view::npos) {
            // O_NONBLOCK: a FIFO planted here must not hang the reader.
            const int fd =
                ::openat(at, part.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
            if (fd < 0) return open_failure(at, part, what, errno, false);
            unique_fd file(fd);
            struct stat st {};
            if (::fstat(fd, &st) != 0) return io_error(what, "fstat", errno);
            if (!S_ISREG(st.st_mode)) {
                return make_error(error_kind::unsafe_path,
                                  std::string(what) + " is not a regular file");
            }
            return file;
        }
        auto dir = open_subdir(at, part, what);
        if (!dir) return dir.error();
        held = std::move(*dir);
        at = held.get();
        rest.remove_prefix(slash + 1);
    }
}

result<std::string> read_all(int fd, std::size_t max_bytes, std::string_view what) {
    std::string out;
    char buf[16384];
    while (true) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return io_error(what, "read", errno);
        }
        if (n == 0) return out;
        if (out.size() + static_cast<std::size_t>(n) > max_bytes) {
            return make_error(error_kind::io, std::string(what) + " is larger than " +
                                                  std::to_string(max_bytes) + " bytes");
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
}

result<bool> stat_at(int dir_fd, const std::string& name, struct stat& st, std::string_view what) {
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return true;
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return false;
    return io_error(what, "lstat", err);
}

result<std::vector<dir_entry>> list_dir(int dir_fd, std::string_view what) {
    // A fresh open file description: readdir moves the offset, which a dup() would share.
    const int fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return io_error(what, "open", errno);
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::fdopendir(fd), &::closedir);
    if (!dir) {
        const int err = errno;
        ::close(fd);
        return io_error(what, "fdopendir", err);
    }
    std::vector<dir_entry> out;
    while (true) {
        errno = 0;
        const dirent* e = ::readdir(dir.get());
        if (e == nullptr) {
            if (errno != 0) return io_error(what, "readdir", errno);
            return out;
        }
        const std::string_view name(e->d_name);
        if (name == "." || name == "..") continue;
        out.push_back(dir_entry{std::string(name), e->d_type});
    }
}

}  // namespace sg::git
