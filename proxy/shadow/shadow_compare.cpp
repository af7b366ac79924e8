// proxy/shadow/shadow_compare: one comparison: v1's answer against each target's (Dolt rendered
// from the plan's columns, or the v2 service), settle-and-reread when the first look cannot decide
// (the state machine is proxy/shadow/settle), and the record of a real discrepancy.
#include "proxy/shadow/shadow_internal.hpp"

namespace sg::proxy {

using namespace shadow_detail;

bool shadow::impl::dolt_allowed() {
    std::lock_guard lock(mu);
    return breaker.allow(steady::now());
}

void shadow::impl::dolt_result(bool reached) {
    std::lock_guard lock(mu);
    if (reached) {
        breaker.success();
    } else {
        breaker.failure(steady::now());
    }
}

std::string shadow::impl::git_token(const std::string& user) {
    auto store = reader.get();
    if (!store) return "absent";
    auto hf = (*store)->head_and_fingerprint(user);
    if (hf) return hf->head + "|" + hf->diffs.value;
    if (hf.error().kind == git::error_kind::not_found ||
        hf.error().kind == git::error_kind::invalid_id) {
        return "absent";
    }
    return "unreadable";
}

template <class F>
auto shadow::impl::through_breaker(dolt::connection& conn, F&& fn)
    -> proxy::result<std::decay_t<decltype(*fn(conn))>> {
    if (!dolt_allowed()) return fail("circuit open: Dolt unreachable");
    auto up = conn.ensure_connected();
    if (!up) {
        dolt_result(false);
        return fail(up.error().to_string());
    }
    auto r = fn(conn);
    if (!r) {
        dolt_result(r.error().kind != dolt::error_kind::connection_lost);
        return fail(r.error().to_string());
    }
    dolt_result(true);
    return std::move(*r);
}

watermark_check shadow::impl::check_dolt(dolt::connection& conn, const std::string& user) {
    auto mark =
        through_breaker(conn, [&](dolt::connection& c) { return dolt::read_watermark(c, user); });
    if (!mark) return mark.error();
    return dolt_token(*mark);
}

// Dolt's answer: the watermark and the parts of the user's state the endpoint renders from, in
// one snapshot (one round trip). Slower than shadow.deadline counts as a timeout (Dolt's own
// time, not the time the comparison waited in the queue or for the mirror).
v2_answer shadow::impl::ask_dolt(dolt::connection& conn, const shadow_job& job) {
    const auto t0 = steady::now();
    const auto deadline = t0 + cfg.shadow.deadline;
    bool asked = false;  // the snapshot read itself failed (not the circuit or the connect)
    auto snap = through_breaker(conn, [&](dolt::connection& c) {
        asked = true;
        return dolt::read_snapshot(c, job.route.user_id, dolt::parts_for(job.route));
    });
    if (!snap) return fail(snap.error().what, asked && steady::now() >= deadline);
    auto rendered = v1::render_read(snap->state, job.route, job.target, tz);
    v2_seconds[static_cast<std::size_t>(target::dolt)][static_cast<std::size_t>(job.route.ep)]
        .observe(seconds_since(t0));
    if (!rendered) return fail("not a read route");
    if (steady::now() > deadline) {
        return fail("Dolt answered after the comparison's deadline", true);
    }
    return v2_reply{rendered->status, std::move(rendered->body), dolt_token(snap->mark)};
}

void shadow::impl::process(dolt::connection& conn, queued& q) {
    const auto ep = q.job.route.ep;
    if (steady::now() > q.enqueued + cfg.shadow.deadline) {
        skip(ep, skip_reason::deadline);
        return;
    }
    if (busy.load(relaxed)) {  // queued before the machine got busy
        skip(ep, skip_reason::busy);
        return;
    }
    const auto shared = std::make_shared<const queued>(std::move(q));
    for (const auto t : targets) compare_with(conn, shared, t);
}

void shadow::impl::defer(settling w, bool reread_back) {
    {
        std::lock_guard lock(mu);
        if (reread_back) --rereading;
        if (stopping) {
            skip(w.q->job.route.ep, skip_reason::stopping, w.t);
            return;
        }
        // Bounded like the queue; a re-read coming back was counted in the bound when it left.
        if (!reread_back && waiting.size() + rereading >= cfg.shadow.queue) {
            skip(w.q->job.route.ep, skip_reason::unsettled, w.t);
            return;
        }
        waiting.push_back(std::move(w));
        std::push_heap(waiting.begin(), waiting.end(), later);
    }
    wake.notify_one();  // a sleeping worker sets its timer by the soonest due
}

// Both sides' tokens for `user`: the look another settling comparison made less than a poll
// interval ago, else a new one. A token seen earlier is as good as a fresh one here: the storage
// token read after the re-read must still equal it, and tokens never come back.
user_look shadow::impl::look(dolt::connection& conn, const std::string& user) {
    const auto now = steady::now();
    {
        std::lock_guard lock(looks_mu);
        auto it = looks.find(user);
        if (it != looks.end() && now - it->second.at < settle_poll) return it->second;
    }
    user_look l;
    l.at = now;
    l.git = git_token(user);
    l.dolt = check_dolt(conn, user);
    looks_made.fetch_add(1, relaxed);
    std::lock_guard lock(looks_mu);
    if (looks.size() >= max_looks) {
        std::erase_if(looks, [&](const auto& kv) {
            return now - std::max(kv.second.at, kv.second.mirror_asked) > cfg.shadow.settle_timeout;
        });
    }
    auto& slot = looks[user];
    l.mirror_asked = slot.mirror_asked;
    slot = l;
    return l;
}

// The mirror asked to look at `user` (a change that bypassed the API has no trigger), at most once
// per mirror_ask_every whoever asks: writes through the API mark the user themselves, and each
// ask can cost the mirror a pass.
void shadow::impl::ask_mirror(const std::string& user) {
    if (mirror_ == nullptr) return;
    const auto now = steady::now();
    {
        std::lock_guard lock(looks_mu);
        auto& slot = looks[user];
        if (now - slot.mirror_asked < mirror_ask_every) return;
        slot.mirror_asked = now;
    }
    mirror_->look_at(user);
}

// v1 read again on the client's thread; the answer comes back through defer, due at once. While
// shadow.max_rereads are on their way, the comparison looks again after a poll interval.
void shadow::impl::reread(settling w) {
    {
        std::unique_lock lock(mu);
        if (rereading >= static_cast<std::size_t>(cfg.shadow.max_rereads)) {
            lock.unlock();
            sl::reread_held_back(w.s, steady::now());
            defer(std::move(w));
            return;
        }
        ++rereading;
    }
    sl::reread_started(w.s);
    rereads.fetch_add(1, relaxed);
    const shadow_job& job = w.q->job;
    get_request req{.address = cfg.v1.address,
                    .target = job.target,
                    .headers = job.headers,
                    .timeout = cfg.shadow.deadline,
                    .max_body = cfg.shadow.max_body_bytes};
    auto held = std::make_shared<settling>(std::move(w));
    v1_client->get(std::move(req), [this, held](fetch_result r) {
        held->again = std::move(r);
        held->s.due = steady::now();
        defer(std::move(*held), true);
    });
}

v2_answer shadow::impl::ask(dolt::connection& conn, const shadow_job& job, target t) {
    return t == target::dolt ? ask_dolt(conn, job) : ask_v2(conn, job);
}

// The v2 service's answer, mapped into v1's shape. v2 reads Dolt: the watermark read just before
// asking says which state it could at least have seen (the settling below checks the rest).
v2_answer shadow::impl::ask_v2(dolt::connection& conn, const shadow_job& job) {
    const watermark_check w = check_dolt(conn, job.route.user_id);
    if (!w) return w.error();
    const auto& v2 = cfg.shadow.v2_http;
    if (v2.address.port == 0) return fail("shadow.v2_http.address is not set");
    const auto t0 = steady::now();
    fetch_result r = http_get({.address = v2.address,
                               .target = v2.path_prefix + job.target,
                               .headers = job.headers,
                               .timeout = cfg.shadow.deadline,
                               .max_body = cfg.shadow.max_body_bytes});
    v2_seconds[static_cast<std::size_t>(target::v2_http)][static_cast<std::size_t>(job.route.ep)]
        .observe(seconds_since(t0));
    if (!r) return r.error();
    return v2_reply{r->status, sl::map_body(r->body, maps[static_cast<std::size_t>(job.route.ep)]),
                    *w};
}

void shadow::impl::compare_with(dolt::connection& conn, const std::shared_ptr<const queued>& q,
                                target t) {
    const shadow_job& job = q->job;
    const auto ep = job.route.ep;
    const auto& user = job.route.user_id;
    const comparator::endpoint_rules& r = rules[static_cast<std::size_t>(ep)];

    // First look: v1's answer as served, against the target's when Dolt's state is the one of
    // v1's storage now (the answer v1 served came from that storage or an older one: an older
    // one can only make a difference, which the settling below sorts out).
    if (comparator::v1_failed(job.v1_status)) {  // nothing to ask v2 about
        count(t, ep, outcome::v1_error);
        return;
    }
    // A branch name, a reflog entry or a search: git resolves it for v1, v2 keeps no refs.
    if (ep == v1::endpoint::get_version && !v1::answerable_revision(job.route.sha)) {
        count(t, ep, outcome::revision_form);
        return;
    }
    std::string token = git_token(user);
    v2_answer v2 = ask(conn, job, t);
    if (!v2) {
        count(t, ep, v2.error().timed_out ? outcome::v2_timeout : outcome::v2_error);
        spdlog::debug("event=shadow_v2_failed target={} endpoint={} request_id={} error=\"{}\"",
                      name(t), v1::name(ep), job.request_id, v2.error().what);
        return;
    }
    settling w{
        q, t, sl::first_look(steady::now(), cfg.shadow.settle_timeout, std::move(token), v2->token),
        std::nullopt};
    if (w.s.in_step) {
        const auto c = comparator::compare({job.v1_status, job.v1_body}, {v2->status, v2->body}, r);
        if (c.what == outcome::match) {
            count(t, ep, outcome::match);
            return;
        }
    }
    settle(conn, std::move(w));
}

// Settle: wait until Dolt is in step with v1's storage (token), then read both again with the
// storage unchanged around the two reads. Equal: lag. Different: a discrepancy. Waiting for the
// mirror hands the comparison back (defer) instead of holding the worker.
void shadow::impl::settle(dolt::connection& conn, settling w) {
    const shadow_job& job = w.q->job;
    const auto ep = job.route.ep;
    const auto& user = job.route.user_id;
    const target t = w.t;
    auto v2_failed = [&](const failure& f) {
        count(t, ep, f.timed_out ? outcome::v2_timeout : outcome::v2_error);
        spdlog::debug("event=shadow_v2_failed target={} endpoint={} request_id={} error=\"{}\"",
                      name(t), v1::name(ep), job.request_id, f.what);
    };
    const comparator::endpoint_rules& r = rules[static_cast<std::size_t>(ep)];
    for (;;) {
        {
            std::unique_lock lock(mu);
            if (stopping) {
                skip(ep, skip_reason::stopping, t);
                return;
            }
        }
        if (w.again) {  // v1's second answer is back: Dolt's now, and whether storage moved
            fetch_result again = std::move(*w.again);
            w.again.reset();
            if (!again) {
                skip(ep, skip_reason::v1_reread_failed, t);
                spdlog::debug("event=shadow_reread_failed endpoint={} request_id={} error=\"{}\"",
                              v1::name(ep), job.request_id, again.error().what);
                return;
            }
            v2_answer v2 = ask(conn, job, t);
            if (!v2) {
                v2_failed(v2.error());
                return;
            }
            const std::string after = git_token(user);
            if (sl::after_reread(w.s, after, v2->token, steady::now()) ==
                sl::reread_verdict::moved) {
                defer(std::move(w));
                return;
            }
            const auto c =
                comparator::compare({again->status, again->body}, {v2->status, v2->body}, r);
            if (c.what == outcome::match) {
                count(t, ep, outcome::lagging);  // the first look differed or could not be trusted
                return;
            }
            count(t, ep, c.what);
            if (comparator::is_discrepancy(c.what)) {  // not v1 failing on the re-read
                record(job, t, c, again->status, again->body, *v2, w.s.attempts);
            }
            return;
        }
        switch (sl::next_action(w.s, steady::now())) {
            case sl::settle_action::give_up: skip(ep, skip_reason::unsettled, t); return;
            case sl::settle_action::ask_mirror:  // then look again after a poll interval
                ask_mirror(user);
                sl::asked_mirror(w.s, steady::now());
                defer(std::move(w));
                return;
            case sl::settle_action::look: {
                const user_look l = look(conn, user);
                if (!l.dolt) {
                    v2_failed(l.dolt.error());
                    return;
                }
                sl::looked(w.s, l.git, *l.dolt);
                continue;
            }
            case sl::settle_action::reread:  // in step at the token: storage must stay there
                reread(std::move(w));
                return;
        }
    }
}

void shadow::impl::record(const shadow_job& job, target t, const comparator::comparison& c,
                          unsigned v1_status, const std::string& v1_body, const v2_reply& v2,
                          int attempts) {
    comparator::discrepancy d;
    d.time_ms = unix_ms();
    d.request_id = job.request_id;
    d.endpoint = std::string(v1::name(job.route.ep));
    d.user = job.route.user_id;
    d.target = job.target;
    d.v2_source = std::string(name(t));
    d.what = c.what;
    d.diff = c.body;
    d.v1_status = v1_status;
    d.v1_body = v1_body;
    d.v2_status = v2.status;
    d.v2_body = v2.body;
    d.attempts = attempts;
    nlohmann::json j = comparator::to_json(d, red);
    {
        std::lock_guard lock(tally_mu);
        auto& paths = tally[static_cast<std::size_t>(t)];
        if (c.body.differences.empty()) {
            paths.add(job.route.ep, "(status)");
        }
        for (const auto& x : c.body.differences) paths.add(job.route.ep, x.general_path);
    }
    if (log) {
        const std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        if (auto written = log->append(line); !written) {
            record_write_errors.fetch_add(1, relaxed);
            spdlog::warn("event=discrepancy_log_failed error=\"{}\"", written.error().what);
        }
    }
    spdlog::info("event=discrepancy target={} endpoint={} result={} request_id={} differences={}",
                 name(t), d.endpoint, comparator::name(c.what), d.request_id,
                 c.body.differences.size());
    if (cfg.shadow.records.ring == 0) return;
    std::lock_guard lock(ring_mu);
    ring.emplace_back(d.endpoint, std::move(j));
    while (ring.size() > cfg.shadow.records.ring) ring.pop_front();
}

}  // namespace sg::proxy
