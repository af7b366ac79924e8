// proxy/shadow/shadow_logic: the shadow comparer's decisions, free of I/O: the comparison rules of
// each read endpoint (built-in knowledge of v1 plus the config), which reads are sampled, and the
// bounded tally of differing field paths that /metrics publishes.
#pragma once

#include "adapters/v1/routes.hpp"
#include "comparator/compare.hpp"
#include "comparator/mapping.hpp"
#include "config/config.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace sg::proxy::shadow_logic {

// The rules for `ep`: v1's own (GET /users/{u}/blocks is a set keyed by "label", v1-contract.md
// §1 #3; the pending diffs list is keyed by "id": v1 orders diffs that share created_at by
// directory order, which the filesystem decides), then the config's endpoint section (its
// array_keys add to or replace the built-in ones). Naive timestamps are read in `naive_offset`
// (minutes east of UTC: v1.time_zone).
comparator::endpoint_rules rules_for(const config::shadow_config& cfg, v1::endpoint ep,
                                     int naive_offset_minutes);

// Sampling: a read of `ep` by `user` is compared when the user is in always_users, or when
// `draw` (uniform in [0, 1)) is below the endpoint's rate.
class sampler {
public:
    explicit sampler(const config::shadow_config& cfg);
    bool take(v1::endpoint ep, const std::string& user, double draw) const;
    double rate(v1::endpoint ep) const { return rates_[static_cast<std::size_t>(ep)]; }

private:
    std::array<double, v1::endpoint_count> rates_{};
    std::set<std::string> always_;
};

// Counts differing field paths per endpoint with bounded cardinality: at most `max_paths`
// distinct paths per endpoint, later new ones count as "(other)".
class path_tally {
public:
    explicit path_tally(std::size_t max_paths) : max_(max_paths) {}
    void add(v1::endpoint ep, const std::string& general_path);
    // (endpoint, path, count), sorted by endpoint then count descending.
    struct row {
        v1::endpoint ep;
        std::string path;
        std::uint64_t count;
    };
    std::vector<row> rows() const;

private:
    std::size_t max_;
    std::array<std::map<std::string, std::uint64_t>, v1::endpoint_count> counts_;
};

// The v2 service's mapping steps for `ep` (shadow.v2_http.endpoints.<ep>.map).
std::vector<comparator::map_step> mapping_for(const config::shadow_config& cfg, v1::endpoint ep);

// A v2 answer's body in v1's shape: parsed, mapped and written out again; unchanged when there
// are no steps or the body is not JSON (the comparison then says how it differs).
std::string map_body(const std::string& body, const std::vector<comparator::map_step>& steps);

// At most `rate` takes per second on average, up to one second's worth at once; rate 0: every
// take succeeds. Not synchronized.
class token_bucket {
public:
    explicit token_bucket(double rate) : rate_(rate), tokens_(rate < 1 ? 1 : rate) {}
    bool take(std::chrono::steady_clock::time_point now);

private:
    double rate_;
    double tokens_;
    std::optional<std::chrono::steady_clock::time_point> last_;
};

// The machine's CPU time from /proc/stat's first ("cpu ") line, in clock ticks: idle (idle +
// iowait) and all (every field but guest times, which user time already counts).
struct cpu_times {
    std::uint64_t idle = 0;
    std::uint64_t total = 0;
};
std::optional<cpu_times> parse_proc_stat(std::string_view text);
// The idle share of the CPU time between two readings (1 when no time passed).
double idle_share(const cpu_times& before, const cpu_times& after);

// A thread's /proc/<pid>/task/<tid>/schedstat: time on a CPU and time runnable but waiting for
// one (ns), and how many times it was put on a CPU.
struct sched_times {
    std::uint64_t run = 0;
    std::uint64_t delay = 0;
    std::uint64_t slices = 0;
};
std::optional<sched_times> parse_schedstat(std::string_view schedstat);
// The µs waited for a CPU per timeslice between two readings of the same threads (0 when they
// did not run, or the readings are not of the same threads: a counter went back).
double wait_per_run_us(const sched_times& before, const sched_times& after);

}  // namespace sg::proxy::shadow_logic
