// tests/tools/openloop: an open-loop HTTP load generator for the benchmarks. Requests go out at a
// fixed rate on a schedule that does not wait for answers (unlike wrk's closed loop, which slows
// down with the server and so hides queueing), each latency measured from the request's
// scheduled time, so a stall counts against every request it delayed (no coordinated omission).
//
//   openloop HOST PORT PATH RATE SECONDS [CONNECTIONS=16] [SPREAD=1000]
//
// Prints one JSON line: {"rate","seconds","sent","ok","non2xx","errors","achieved_rps",
// "p50_ms","p90_ms","p99_ms","p999_ms","max_ms"}. PATH may contain "{i}", replaced by the
// request's number modulo SPREAD (to spread reads over several resources). Plain POSIX sockets,
// HTTP/1.1 keep-alive, Content-Length bodies only (what v1 and shadowgate send).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

int connect_to(const std::string& host, int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    if (::inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1 ||
        ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

// Reads one response; its status, or -1 when the connection failed.
int read_response(int fd, std::string& buf) {
    std::size_t header_end;
    while ((header_end = buf.find("\r\n\r\n")) == std::string::npos) {
        char tmp[16384];
        const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
        if (n <= 0) return -1;
        buf.append(tmp, static_cast<std::size_t>(n));
    }
    const int status = buf.size() > 12 ? std::atoi(buf.c_str() + 9) : -1;
    std::size_t length = 0;
    std::string lower = buf.substr(0, header_end);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (const auto at = lower.find("content-length:"); at != std::string::npos) {
        length = static_cast<std::size_t>(std::strtoull(lower.c_str() + at + 15, nullptr, 10));
    }
    const std::size_t total = header_end + 4 + length;
    while (buf.size() < total) {
        char tmp[16384];
        const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
        if (n <= 0) return -1;
        buf.append(tmp, static_cast<std::size_t>(n));
    }
    buf.erase(0, total);
    return status;
}

struct tally {
    std::vector<double> latencies_ms;
    std::size_t sent = 0, ok = 0, non2xx = 0, errors = 0;
};

}  // namespace

int main(int argc, char** argv) {
    if (argc < 6) {
        std::fprintf(stderr,
                     "usage: openloop HOST PORT PATH RATE SECONDS [CONNECTIONS] [SPREAD]\n");
        return 2;
    }
    const std::string host = argv[1];
    const int port = std::atoi(argv[2]);
    const std::string path = argv[3];
    const double rate = std::atof(argv[4]);
    const double seconds = std::atof(argv[5]);
    const int connections = argc > 6 ? std::max(1, std::atoi(argv[6])) : 16;
    const std::size_t spread =
        argc > 7 ? static_cast<std::size_t>(std::max(1, std::atoi(argv[7]))) : 1000;
    if (rate <= 0 || seconds <= 0) {
        std::fprintf(stderr, "openloop: RATE and SECONDS must be positive\n");
        return 2;
    }
    const auto total = static_cast<std::size_t>(rate * seconds);
    const auto interval = std::chrono::duration<double>(1.0 / rate);
    const auto start = clock_type::now() + std::chrono::milliseconds(50);
    std::vector<tally> tallies(static_cast<std::size_t>(connections));
    std::vector<std::thread> threads;
    for (int c = 0; c < connections; ++c) {
        threads.emplace_back([&, c] {
            tally& t = tallies[static_cast<std::size_t>(c)];
            int fd = -1;
            std::string buf;
            // Request k (k = c, c + connections, ...) is due at start + k * interval.
            for (std::size_t k = static_cast<std::size_t>(c); k < total;
                 k += static_cast<std::size_t>(connections)) {
                const auto due =
                    start + std::chrono::duration_cast<clock_type::duration>(interval * k);
                std::this_thread::sleep_until(due);
                if (fd < 0) {
                    fd = connect_to(host, port);
                    buf.clear();
                }
                ++t.sent;
                std::string target = path;
                if (const auto at = target.find("{i}"); at != std::string::npos) {
                    target.replace(at, 3, std::to_string(k % spread));
                }
                const std::string req = "GET " + target + " HTTP/1.1\r\nHost: " + host +
                                        "\r\nUser-Agent: openloop\r\n\r\n";
                int status = -1;
                if (fd >= 0 && ::send(fd, req.data(), req.size(), MSG_NOSIGNAL) ==
                                   static_cast<ssize_t>(req.size())) {
                    status = read_response(fd, buf);
                }
                if (status < 0) {
                    ++t.errors;
                    if (fd >= 0) ::close(fd);
                    fd = -1;
                    continue;
                }
                t.latencies_ms.push_back(
                    std::chrono::duration<double, std::milli>(clock_type::now() - due).count());
                if (status >= 200 && status < 300) {
                    ++t.ok;
                } else {
                    ++t.non2xx;
                }
            }
            if (fd >= 0) ::close(fd);
        });
    }
    for (auto& th : threads) th.join();
    const double elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
    tally all;
    for (auto& t : tallies) {
        all.sent += t.sent;
        all.ok += t.ok;
        all.non2xx += t.non2xx;
        all.errors += t.errors;
        all.latencies_ms.insert(all.latencies_ms.end(), t.latencies_ms.begin(),
                                t.latencies_ms.end());
    }
    std::sort(all.latencies_ms.begin(), all.latencies_ms.end());
    auto pct = [&](double p) {
        if (all.latencies_ms.empty()) return 0.0;
        const auto i =
            static_cast<std::size_t>(p * static_cast<double>(all.latencies_ms.size() - 1));
        return all.latencies_ms[i];
    };
    std::printf(
        "{\"rate\":%.1f,\"seconds\":%.1f,\"sent\":%zu,\"ok\":%zu,\"non2xx\":%zu,\"errors\":%zu,"
        "\"achieved_rps\":%.1f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,"
        "\"max_ms\":%.3f}\n",
        rate, seconds, all.sent, all.ok, all.non2xx, all.errors,
        static_cast<double>(all.ok + all.non2xx) / elapsed, pct(0.5), pct(0.9), pct(0.99),
        pct(0.999), all.latencies_ms.empty() ? 0.0 : all.latencies_ms.back());
    return all.errors == 0 ? 0 : 1;
}
