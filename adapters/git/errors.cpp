// adapters/git/errors: counters and names for the reader's errors and warnings.
#include "adapters/git/errors.hpp"

#include <atomic>
#include <stdexcept>

namespace sg::git {
namespace {

constexpr std::array<std::string_view, error_kind_count> error_names = {
    "invalid_id", "not_found", "unsafe_path", "io", "repository", "corrupt",
};
constexpr std::array<std::string_view, warning_kind_count> warning_names = {
    "unsafe_user",      "empty_repository", "unsafe_label",   "non_blob_block",
    "unsafe_diff_file", "malformed_diff",   "odd_diff_field",
};

std::array<std::atomic<std::uint64_t>, error_kind_count> error_counts{};
std::array<std::atomic<std::uint64_t>, warning_kind_count> warning_counts{};

}  // namespace

void count_error(const error& e) {
    error_counts[static_cast<std::size_t>(e.kind)].fetch_add(1, std::memory_order_relaxed);
}

warning make_warning(warning_kind kind, std::string subject, std::string message) {
    warning_counts[static_cast<std::size_t>(kind)].fetch_add(1, std::memory_order_relaxed);
    return warning{kind, std::move(subject), std::move(message)};
}

std::string_view name(error_kind k) { return error_names[static_cast<std::size_t>(k)]; }
std::string_view name(warning_kind k) { return warning_names[static_cast<std::size_t>(k)]; }

std::uint64_t count(error_kind k) {
    return error_counts[static_cast<std::size_t>(k)].load(std::memory_order_relaxed);
}
std::uint64_t count(warning_kind k) {
    return warning_counts[static_cast<std::size_t>(k)].load(std::memory_order_relaxed);
}

void throw_exception_from_error(const error& e, const boost::source_location&) {
    throw std::runtime_error("sg::git: value() on an error: " + std::string(name(e.kind)) + ": " +
                             e.message);
}

}  // namespace sg::git
