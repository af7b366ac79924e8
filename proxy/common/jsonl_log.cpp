// proxy/common/jsonl_log: see the header.
#include "proxy/common/jsonl_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace sg::proxy {

jsonl_log::jsonl_log(std::string path, std::size_t max_bytes, int keep)
    : path_(std::move(path)), max_(max_bytes), keep_(keep) {}

jsonl_log::~jsonl_log() {
    if (fd_ >= 0) ::close(fd_);
}

result<> jsonl_log::open_locked() {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd_ < 0) return fail("open " + path_ + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd_);
        fd_ = -1;
        return fail(path_ + ": not a regular file");
    }
    size_ = static_cast<std::size_t>(st.st_size);
    return {};
}

result<> jsonl_log::rotate_locked() {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
    auto numbered = [&](int i) { return path_ + "." + std::to_string(i); };
    if (keep_ <= 0) {
        ::unlink(path_.c_str());
    } else {
        ::unlink(numbered(keep_).c_str());
        for (int i = keep_ - 1; i >= 1; --i) ::rename(numbered(i).c_str(), numbered(i + 1).c_str());
        if (::rename(path_.c_str(), numbered(1).c_str()) != 0 && errno != ENOENT) {
            return fail("rotate " + path_ + ": " + std::strerror(errno));
        }
    }
    ++rotations_;
    return open_locked();
}

result<> jsonl_log::append(std::string_view line) {
    std::lock_guard lock(mu_);
    if (fd_ < 0) {
        if (auto opened = open_locked(); !opened) return opened;
    }
    if (size_ > 0 && size_ + line.size() + 1 > max_) {
        if (auto rotated = rotate_locked(); !rotated) return rotated;
    }
    std::string buf;
    buf.reserve(line.size() + 1);
    buf.append(line);
    buf.push_back('\n');
    std::size_t done = 0;
    while (done < buf.size()) {
        const ssize_t n = ::write(fd_, buf.data() + done, buf.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail("write " + path_ + ": " + std::strerror(errno));
        }
        done += static_cast<std::size_t>(n);
    }
    size_ += buf.size();
    return {};
}

std::uint64_t jsonl_log::rotations() const {
    std::lock_guard lock(mu_);
    return rotations_;
}

}  // namespace sg::proxy
