// proxy/mirror/capture_scan: the mirror's capture scan. At start-up and every
// mirror.scan_interval it compares every user's HEAD and pending_diffs/ fingerprint with the
// watermarks in Dolt, which catches writes that bypass the proxy, triggers lost in a crash and
// everything missed while Dolt was away; what it finds goes to the worker's schedule. It also
// watches the server's max_allowed_packet. Blocking: its own thread.
#include "adapters/dolt/schema.hpp"
#include "adapters/v1/utf8.hpp"
#include "proxy/common/dolt_session.hpp"
#include "proxy/mirror/mirror_internal.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <unordered_map>
#include <vector>

namespace sg::proxy {

namespace {

using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;
constexpr auto relaxed = std::memory_order_relaxed;

}  // namespace

// The global value, not the session's: an operator's SET GLOBAL shows at the next scan.
void mirror::impl::check_packet(dolt::connection& conn) {
    auto rows = conn.query("SELECT @@global.max_allowed_packet");
    if (!rows || rows->data.empty() || rows->data[0].empty() || !rows->data[0][0]) return;
    std::uint64_t value = 0;
    const std::string& text = *rows->data[0][0];
    std::from_chars(text.data(), text.data() + text.size(), value);
    const std::uint64_t before = server_packet.exchange(value, relaxed);
    if (value == before) return;
    if (value < packet_needed) {
        spdlog::warn(
            "event=dolt_packet_too_small max_allowed_packet={} needed={} body_limit_bytes={} "
            "detail=\"a block near proxy.limits.body_limit_bytes would park its user: {}\"",
            value, packet_needed, cfg.proxy.limits.body_limit_bytes,
            dolt::packet_remedy(packet_needed));
    } else if (before != 0 && before < packet_needed) {
        spdlog::info("event=dolt_packet_ok max_allowed_packet={} needed={}", value, packet_needed);
    }
}

bool mirror::impl::run_scan(dolt::connection& conn) {
    const auto t0 = steady::now();
    const git::storage_reader* store = storage();
    if (store == nullptr) return false;
    auto listed = store->list_users();
    if (!listed) {
        spdlog::error("event=mirror_scan_failed error=\"{}\"", listed.error().message);
        return false;
    }
    std::unordered_map<std::string, std::pair<std::string, std::string>> marks;
    if (auto up = conn.ensure_connected(); !up) {
        spdlog::warn("event=mirror_scan_skipped reason=dolt_unreachable error=\"{}\"",
                     up.error().to_string());
        return false;
    }
    check_packet(conn);
    auto rows = conn.query("SELECT user_id, v1_commit, diffs_fingerprint FROM mirror_watermarks");
    if (!rows) {
        // No table yet (the worker creates the schema on its first pass): nothing is mirrored.
        if (rows.error().kind != dolt::error_kind::permanent) {
            spdlog::warn("event=mirror_scan_skipped reason=dolt error=\"{}\"",
                         rows.error().to_string());
            return false;
        }
    } else {
        for (auto& r : rows->data) {
            if (r.size() == 3 && r[0] && r[1] && r[2]) marks[*r[0]] = {*r[1], *r[2]};
        }
    }

    std::vector<ml::observed> changed;
    for (const auto& u : listed->users) {
        auto hf = store->head_and_fingerprint(u);
        if (!hf) {
            changed.push_back({u, "", ""});  // the worker reads it and reports why
            continue;
        }
        auto m = marks.find(u);
        if (m == marks.end() || m->second.first != hf->head ||
            m->second.second != hf->diffs.value || hf->diffs.racy) {
            changed.push_back({u, hf->head, hf->diffs.value});
        }
    }
    ml::schedule::scan_effect effect;
    {
        std::lock_guard lock(mu);
        effect = sched.scanned(listed->users, changed, steady::now());
    }
    for (const auto& user : effect.gone) {
        spdlog::info("event=mirror_parked_released reason=gone user={}", v1::escaped(user));
    }
    parked_gone.fetch_add(effect.gone.size(), relaxed);
    parked_retries.fetch_add(effect.parked_retries, relaxed);
    const std::size_t found = effect.found;
    if (effect.wake_worker()) wake.notify_one();
    scans.fetch_add(1, relaxed);
    scan_found.fetch_add(found, relaxed);
    scan_last_users.store(listed->users.size(), relaxed);
    scan_last_ns.store(
        static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - t0).count()),
        relaxed);
    spdlog::debug("event=mirror_scan users={} found={} ms={:.1f}", listed->users.size(), found,
                  std::chrono::duration<double, std::milli>(steady::now() - t0).count());
    return true;
}

void mirror::impl::scan_loop() {
    dolt::connection conn(dolt_options(cfg), dolt_stats);
    for (;;) {
        const bool ok = run_scan(conn);
        if (!ok) scan_failures.fetch_add(1, relaxed);
        std::unique_lock lock(mu);
        // After a failed scan, try again sooner: what it would have found is still waiting.
        const auto wait = ok ? cfg.mirror.scan_interval
                             : std::min<milliseconds>(cfg.mirror.scan_interval, milliseconds(2000));
        scan_wake.wait_for(lock, wait, [&] { return stopping || scan_requested; });
        if (stopping) return;
        scan_requested = false;
    }
}

}  // namespace sg::proxy
