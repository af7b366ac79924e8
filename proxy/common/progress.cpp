// proxy/common/progress: bar and line formatting, and the print throttling.
#include "proxy/common/progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace sg::proxy {

std::string group_thousands(std::uint64_t n) {
    std::string digits = std::to_string(n);
    std::string out;
    const int len = static_cast<int>(digits.size());
    for (int i = 0; i < len; ++i) {
        if (i > 0 && (len - i) % 3 == 0) out += ',';
        out += digits[static_cast<std::size_t>(i)];
    }
    return out;
}

namespace {

double rate_of(std::uint64_t done, double elapsed_s) {
    return elapsed_s > 0 ? static_cast<double>(done) / elapsed_s : 0.0;
}

// Seconds left at the current rate; negative when unknown (nothing done yet).
double eta_of(std::uint64_t done, std::uint64_t total, double elapsed_s) {
    const double rate = rate_of(done, elapsed_s);
    if (rate <= 0 || done > total) return -1;
    return static_cast<double>(total - done) / rate;
}

std::string clock_text(double seconds) {
    if (seconds < 0) return "?";
    auto s = static_cast<std::uint64_t>(std::llround(seconds));
    if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    return fmt::format("{}:{:02}", s / 60, s % 60);
}

}  // namespace

std::string format_bar(std::uint64_t done, std::uint64_t total, double elapsed_s, int width,
                       const std::string& unit) {
    width = std::max(width, 1);
    const double fraction =
        total == 0 ? 1.0 : std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
    const int filled = static_cast<int>(fraction * width);
    std::string bar(static_cast<std::size_t>(filled), '=');
    if (filled < width) {
        bar += '>';
        bar.append(static_cast<std::size_t>(width - filled - 1), ' ');
    }
    return fmt::format("[{}] {}/{} {}  {:.1f}/s  ETA {}", bar, group_thousands(done),
                       group_thousands(total), unit, rate_of(done, elapsed_s),
                       clock_text(eta_of(done, total, elapsed_s)));
}

std::string format_line(std::uint64_t done, std::uint64_t total, double elapsed_s) {
    const double eta = eta_of(done, total, elapsed_s);
    return fmt::format("progress done={} total={} rate={:.1f} eta_s={} elapsed_s={:.1f}", done,
                       total, rate_of(done, elapsed_s),
                       eta < 0 ? std::string("unknown") : std::to_string(std::llround(eta)),
                       elapsed_s);
}

progress_reporter::progress_reporter(std::FILE* out, std::uint64_t total, std::string unit,
                                     std::chrono::milliseconds line_interval)
    : out_(out),
      total_(total),
      unit_(std::move(unit)),
      tty_(::isatty(::fileno(out)) == 1),
      interval_(tty_ ? std::chrono::milliseconds(100) : line_interval),
      start_(clock::now()),
      last_print_(start_) {}

double progress_reporter::elapsed() const {
    return std::chrono::duration<double>(clock::now() - start_).count();
}

void progress_reporter::update(std::uint64_t done) {
    const auto now = clock::now();
    if (now - last_print_ < interval_) return;
    last_print_ = now;
    if (tty_) {
        std::fprintf(out_, "\r%s\033[K", format_bar(done, total_, elapsed(), 30, unit_).c_str());
    } else {
        std::fprintf(out_, "%s\n", format_line(done, total_, elapsed()).c_str());
    }
    std::fflush(out_);
}

void progress_reporter::finish(std::uint64_t done) {
    if (tty_) {
        std::fprintf(out_, "\r%s\033[K\n", format_bar(done, total_, elapsed(), 30, unit_).c_str());
    } else {
        std::fprintf(out_, "%s\n", format_line(done, total_, elapsed()).c_str());
    }
    std::fflush(out_);
}

}  // namespace sg::proxy
