// proxy/common/file_util: see the header.
#include "proxy/common/file_util.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sg::proxy {

result<> write_atomically(const std::string& path, const std::string& text) {
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return fail("cannot create " + tmp + ": " + std::strerror(errno));
    std::size_t done = 0;
    while (done < text.size()) {
        const auto n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            const std::string e = std::strerror(errno);
            ::close(fd);
            return fail("cannot write " + tmp + ": " + e);
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) return fail("cannot sync " + tmp);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        return fail("cannot rename " + tmp + " to " + path + ": " + std::strerror(errno));
    }
    return {};
}

}  // namespace sg::proxy
