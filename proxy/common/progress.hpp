// proxy/common/progress: progress reporting for long batch commands (migrate, reconcile): a
// one-line bar with rate and ETA for terminals, plain periodic lines otherwise. Formatting is pure;
// the reporter only decides when to print.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace sg::proxy {

// "[=========>          ] 4,210/10,000 users  702.1/s  ETA 0:08" for a bar of `width` cells.
std::string format_bar(std::uint64_t done, std::uint64_t total, double elapsed_s, int width,
                       const std::string& unit);

// "progress done=4210 total=10000 rate=702.1 eta_s=8 elapsed_s=6.0" for logs and pipes.
std::string format_line(std::uint64_t done, std::uint64_t total, double elapsed_s);

// 1234567 -> "1,234,567".
std::string group_thousands(std::uint64_t n);

// Prints progress to a FILE*: on a terminal, the bar redrawn in place at most every 100 ms; else
// a plain line at most every `line_interval`. finish() prints the final state once.
class progress_reporter {
public:
    progress_reporter(std::FILE* out, std::uint64_t total, std::string unit,
                      std::chrono::milliseconds line_interval = std::chrono::seconds(5));
    void update(std::uint64_t done);
    void finish(std::uint64_t done);

private:
    using clock = std::chrono::steady_clock;
    double elapsed() const;

    std::FILE* out_;
    std::uint64_t total_;
    std::string unit_;
    bool tty_;
    std::chrono::milliseconds interval_;
    clock::time_point start_;
    clock::time_point last_print_;
};

}  // namespace sg::proxy
