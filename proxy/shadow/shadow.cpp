// proxy/shadow/shadow: the public side of the shadow comparer (see the header), the workers' loop,
// status and metrics. One comparison is shadow_compare.cpp; the CPU guard is shadow_cpu.cpp.
#include "proxy/shadow/shadow.hpp"
#include "proxy/shadow/shadow_internal.hpp"

namespace sg::proxy {

using namespace shadow_detail;

thread_local std::mt19937_64 shadow::impl::rng{std::random_device{}()};

shadow::shadow(const config::config& cfg, mirror* mir, prometheus::Registry& reg)
    : impl_(std::make_unique<impl>(cfg, mir, reg)) {}

shadow::~shadow() { stop(); }

void shadow::start() {
    std::lock_guard lock(impl_->mu);
    if (!impl_->workers.empty()) return;
    impl_->stopping = false;
    // Opened by the stage that compares, not by the comparer's existence.
    const auto& records = impl_->cfg.shadow.records;
    if (!impl_->log && !records.file.empty()) {
        impl_->log.emplace(records.file, records.max_file_bytes, records.keep_files);
    }
    impl_->active.store(true);
    impl_->v1_client = std::make_unique<http_client>("sg-compare", comparer_nice);
    for (int i = 0; i < impl_->cfg.shadow.workers; ++i) {
        worker_thread w;
        w.start("sg-compare", task_kind::shadow_worker,
                [this](const std::stop_token&) { impl_->worker_loop(); });
        impl_->workers.push_back(std::move(w));
    }
    if (impl_->cfg.shadow.min_idle_cpu > 0 || impl_->cfg.shadow.max_proxy_wait_us > 0) {
        impl_->cpu_watch.start("sg-cpu-watch", task_kind::shadow_cpu_watch,
                               [this](const std::stop_token&) { impl_->watch_cpu(); });
    }
}

void shadow::stop() {
    // The stop is the comparer's own flag (under mu): offer() must see it too.
    std::vector<worker_thread> threads;
    {
        std::lock_guard lock(impl_->mu);
        impl_->active.store(false);
        impl_->stopping = true;
        for (const auto& q : impl_->queue) {
            impl_->skip(q.job.route.ep, skip_reason::stopping);
        }
        impl_->queue.clear();
        for (const auto& w : impl_->waiting) {
            impl_->skip(w.q->job.route.ep, skip_reason::stopping, w.t);
        }
        impl_->waiting.clear();
        threads.swap(impl_->workers);
        threads.push_back(std::move(impl_->cpu_watch));
    }
    impl_->wake.notify_all();
    impl_->pause.notify_all();
    for (auto& t : threads) t.join();
    // Re-reads still on their way end as "stopping": each comes back through defer, which
    // counts it skipped.
    if (impl_->v1_client) impl_->v1_client->stop();
    impl_->v1_client.reset();
}

bool shadow::active() const { return impl_->active.load(); }

bool shadow::wants(const v1::route& route, std::string_view method) const {
    if (method != "GET" || route.hostile_reason) return false;
    std::uniform_real_distribution<double> u(0.0, 1.0);
    if (!impl_->sample.take(route.ep, route.user_id, u(impl::rng))) return false;
    // A busy machine skips here, before the proxy copies the request and the answer.
    if (impl_->busy.load(relaxed)) {
        impl_->skip(route.ep, skip_reason::busy);
        return false;
    }
    return true;
}

void shadow::offer(shadow_job job) {
    const auto ep = job.route.ep;
    if (job.v1_body.size() > impl_->cfg.shadow.max_body_bytes) {
        impl_->skip(ep, skip_reason::too_large);
        return;
    }
    impl_->v1_seconds[static_cast<std::size_t>(ep)].observe(job.v1_seconds);
    {
        std::lock_guard lock(impl_->mu);
        if (impl_->stopping || impl_->queue.size() >= impl_->cfg.shadow.queue) {
            impl_->skip(ep, impl_->stopping ? skip_reason::stopping : skip_reason::queue_full);
            return;
        }
        if (!impl_->budget.take(steady::now())) {
            impl_->skip(ep, skip_reason::budget);
            return;
        }
        impl_->queue.push_back(queued{std::move(job), steady::now()});
    }
    impl_->wake.notify_one();
}

// ---- the workers -------------------------------------------------------------------------------

void shadow::impl::worker_loop() {
    // Comparisons yield the CPU to the proxy's threads: on a busy machine they fall behind (and
    // are skipped when the queue fills) rather than slow the client's answers. Linux's nice
    // applies per thread; failing to lower it is harmless.
    (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), comparer_nice);
    dolt::connection conn(dolt_options(cfg), dolt_stats);
    std::unique_lock lock(mu);
    for (;;) {
        // A comparison due to settle comes first (it is older), then a new one; in between the
        // worker sleeps until the next one is due or a new one is queued.
        const bool due = !waiting.empty() && waiting.front().s.due <= steady::now();
        if (stopping) return;
        if (due) {
            std::pop_heap(waiting.begin(), waiting.end(), later);
            settling w = std::move(waiting.back());
            waiting.pop_back();
            ++running;
            lock.unlock();
            settle(conn, std::move(w));
            lock.lock();
            --running;
            continue;
        }
        if (queue.empty()) {
            if (waiting.empty()) {
                wake.wait(lock);
            } else {
                wake.wait_until(lock, waiting.front().s.due);
            }
            continue;
        }
        queued q = std::move(queue.front());
        queue.pop_front();
        ++running;
        lock.unlock();
        process(conn, q);
        lock.lock();
        --running;
    }
}

// ---- admin and metrics
// ---------------------------------------------------------------------------

std::string shadow::discrepancies_json(std::string_view endpoint, std::size_t limit) const {
    nlohmann::json out = nlohmann::json::array();
    std::lock_guard lock(impl_->ring_mu);
    for (auto it = impl_->ring.rbegin(); it != impl_->ring.rend() && out.size() < limit; ++it) {
        if (!endpoint.empty() && it->first != endpoint) continue;
        out.push_back(it->second);
    }
    return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string shadow::status_json() const {
    const impl& s = *impl_;
    nlohmann::json j;
    {
        std::lock_guard lock(s.mu);
        j["queued"] = s.queue.size();
        j["running"] = s.running;
        j["settling"] = s.waiting.size() + s.rereading;  // waiting for the mirror or v1
        j["workers"] = s.workers.size();
        j["circuit"] = std::string(ml::name(s.breaker.current()));
    }
    j["idle"] = j["queued"] == 0 && j["running"] == 0 && j["settling"] == 0;
    j["cpu_idle_share"] = s.idle.load(relaxed);
    j["proxy_wait_per_run_us"] = s.proxy_wait_per_run.load(relaxed);
    j["busy"] = s.busy.load(relaxed);
    j["busy_samples"] = {{"low_idle_cpu", s.busy_low_idle.load()},
                         {"proxy_wait", s.busy_proxy_wait.load()}};
    nlohmann::json names = nlohmann::json::array();
    for (const auto t : s.targets) names.push_back(std::string(name(t)));
    j["targets"] = std::move(names);
    // Per endpoint: results summed over the targets, and per target.
    nlohmann::json eps = nlohmann::json::object();
    for (const auto ep : v1::all_endpoints()) {
        if (!v1::is_block_read(ep)) continue;
        const auto e = static_cast<std::size_t>(ep);
        nlohmann::json sum = nlohmann::json::object();
        nlohmann::json by_target = nlohmann::json::object();
        for (const auto t : s.targets) {
            nlohmann::json counts = nlohmann::json::object();
            for (const auto r : comparator::all_results()) {
                const std::string key(comparator::name(r));
                const auto n =
                    s.results[static_cast<std::size_t>(t)][e][static_cast<std::size_t>(r)].load();
                counts[key] = n;
                sum[key] = sum.value(key, std::uint64_t{0}) + n;
            }
            by_target[std::string(name(t))] = std::move(counts);
        }
        eps[std::string(v1::name(ep))] = {{"sample_rate", s.sample.rate(ep)},
                                          {"results", std::move(sum)},
                                          {"targets", std::move(by_target)}};
    }
    j["endpoints"] = std::move(eps);
    nlohmann::json skipped = nlohmann::json::object();
    for (std::size_t i = 0; i < skip_names.size(); ++i) {
        skipped[std::string(skip_names[i])] = s.skips[i].load();
    }
    j["skipped"] = std::move(skipped);
    j["rereads"] = s.rereads.load();
    return j.dump() + "\n";
}

std::string shadow::differing_paths_json() const {
    nlohmann::json out = nlohmann::json::array();
    std::lock_guard lock(impl_->tally_mu);
    for (const auto t : impl_->targets) {
        for (const auto& row : impl_->tally[static_cast<std::size_t>(t)].rows()) {
            out.push_back({{"endpoint", std::string(v1::name(row.ep))},
                           {"target", std::string(name(t))},
                           {"path", row.path},
                           {"count", row.count}});
        }
    }
    return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::map<std::string, std::map<std::string, std::uint64_t>> shadow::counts(
    config::compare_target wanted) const {
    std::map<std::string, std::map<std::string, std::uint64_t>> out;
    for (const auto t : impl_->targets) {
        if (t != wanted) continue;
        for (const auto ep : v1::all_endpoints()) {
            if (!v1::is_block_read(ep)) continue;
            auto& row = out[std::string(v1::name(ep))];
            for (const auto r : comparator::all_results()) {
                row[std::string(comparator::name(r))] =
                    impl_
                        ->results[static_cast<std::size_t>(t)][static_cast<std::size_t>(ep)]
                                 [static_cast<std::size_t>(r)]
                        .load();
            }
        }
    }
    return out;
}

void shadow::impl::register_metrics(prometheus::Registry& reg) {
    auto& compared =
        add_counter_family(reg, "shadowgate_compare_total",
                           "Shadow comparisons by endpoint, target (dolt, v2_http) and result.");
    // One histogram per compared endpoint (and target).
    auto& v1_hist = add_histogram_family(reg, "shadowgate_compare_v1_seconds",
                                         "v1's read latency for compared reads.");
    auto& v2_hist = add_histogram_family(
        reg, "shadowgate_compare_v2_seconds",
        "The target's answer time for compared reads (dolt: read and rendering; "
        "v2_http: the service's round trip).");
    for (const auto ep : v1::all_endpoints()) {
        if (!v1::is_block_read(ep)) continue;
        const std::string endpoint(v1::name(ep));
        const auto e = static_cast<std::size_t>(ep);
        v1_seconds[e] = series(v1_hist, {{"endpoint", endpoint}});
        for (const auto t : targets) {
            const std::string target_name(name(t));
            const auto ti = static_cast<std::size_t>(t);
            for (const auto r : comparator::all_results()) {
                results[ti][e][static_cast<std::size_t>(r)] =
                    series(compared, {{"endpoint", endpoint},
                                      {"target", target_name},
                                      {"result", std::string(comparator::name(r))}});
            }
            v2_seconds[ti][e] = series(v2_hist, {{"endpoint", endpoint}, {"target", target_name}});
        }
    }
    auto& skipped = add_counter_family(reg, "shadowgate_compare_skipped_total",
                                       "Comparisons not made, by reason.");
    for (std::size_t i = 0; i < skip_names.size(); ++i) {
        skips[i] = series(skipped, {{"reason", std::string(skip_names[i])}});
    }
    scraped.differing_paths = &add_counter_family(
        reg, "shadowgate_compare_differing_paths_total",
        "Differing field paths in discrepancies (array positions and keys as *; at "
        "most 32 per endpoint, then (other)).");
    scraped.queued =
        add_gauge(reg, "shadowgate_compare_queued", "Comparisons waiting for a worker.");
    scraped.running = add_gauge(reg, "shadowgate_compare_running", "Comparisons in progress.");
    scraped.settling =
        add_gauge(reg, "shadowgate_compare_settling",
                  "Comparisons waiting for the mirror to catch up (holding no worker).");
    scraped.cpu_idle_ratio =
        add_gauge(reg, "shadowgate_compare_cpu_idle_ratio",
                  "The machine's idle CPU share at the last sample (comparisons pause below "
                  "shadow.min_idle_cpu).");
    scraped.proxy_wait_per_run =
        add_gauge(reg, "shadowgate_compare_proxy_wait_per_run_seconds",
                  "How long the proxy threads waited for a CPU, on average, each time they ran "
                  "(last 500 ms; comparisons pause above shadow.max_proxy_wait_us).");
    auto& busy_samples = add_counter_family(
        reg, "shadowgate_compare_busy_samples_total",
        "CPU samples (every 100 ms) that paused new comparisons, by what tripped.");
    busy_low_idle = series(busy_samples, {{"cause", "low_idle_cpu"}});
    busy_proxy_wait = series(busy_samples, {{"cause", "proxy_wait"}});
    rereads = add_counter(reg, "shadowgate_compare_rereads_total",
                          "Second reads of both sides after the mirror settled.");
    record_write_errors = add_counter(reg, "shadowgate_compare_record_write_errors_total",
                                      "Discrepancy records the JSONL file could not take.");
}

void shadow::refresh_metrics() const {
    const impl& s = *impl_;
    {
        std::lock_guard lock(s.tally_mu);
        for (const auto t : s.targets) {
            for (const auto& row : s.tally[static_cast<std::size_t>(t)].rows()) {
                // A path's series is made when the tally first has it: at most 32 per endpoint.
                series(*s.scraped.differing_paths, {{"endpoint", std::string(v1::name(row.ep))},
                                                    {"target", std::string(name(t))},
                                                    {"path", row.path}})
                    .advance_to(static_cast<double>(row.count));
            }
        }
    }
    std::size_t queued = 0, running = 0, settling_now = 0;
    {
        std::lock_guard lock(s.mu);
        queued = s.queue.size();
        running = s.running;
        settling_now = s.waiting.size() + s.rereading;
    }
    s.scraped.queued.set(static_cast<double>(queued));
    s.scraped.running.set(static_cast<double>(running));
    s.scraped.settling.set(static_cast<double>(settling_now));
    s.scraped.cpu_idle_ratio.set(s.idle.load(relaxed));
    s.scraped.proxy_wait_per_run.set(s.proxy_wait_per_run.load(relaxed) / 1e6);
}

}  // namespace sg::proxy
