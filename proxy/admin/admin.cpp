// proxy/admin/admin: the admin listener's sessions and endpoints, on one thread of its own.
#include "proxy/admin/admin.hpp"

#include "adapters/v1/query.hpp"
#include "comparator/report.hpp"
#include "proxy/common/task_failure.hpp"
#include "proxy/common/worker_thread.hpp"
#include "proxy/control/requests.hpp"
#include "proxy/gate/gate.hpp"
#include "proxy/jobs/reconcile.hpp"
#include "proxy/net/http_read.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <optional>
#include <stdexcept>

namespace sg::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;

namespace {
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t admin_header_limit = 8 * 1024;
constexpr std::chrono::seconds admin_timeout{30};
constexpr std::chrono::seconds readiness_timeout{1};

using response_t = http::response<http::string_body>;
using request_t = http::request<http::string_body>;

response_t make_response(http::status status, std::string_view content_type, std::string body) {
    response_t res{status, 11};
    res.set(http::field::content_type, content_type);
    res.set(http::field::cache_control, "no-store");
    res.body() = std::move(body);
    return res;
}

response_t json_response(http::status status, const nlohmann::json& j) {
    return make_response(status, "application/json", j.dump() + "\n");
}
}  // namespace

bool bearer_token_matches(std::string_view authorization, std::string_view token) {
    // RFC 9110 §11.1 and RFC 6750 §2.1: the scheme is case-insensitive, then one or more spaces.
    static constexpr std::string_view scheme = "bearer";
    if (token.empty() || authorization.size() <= scheme.size()) return false;
    if (!boost::beast::iequals(authorization.substr(0, scheme.size()), scheme)) return false;
    std::string_view given = authorization.substr(scheme.size());
    const auto spaces = given.find_first_not_of(' ');
    if (spaces == 0 || spaces == given.npos) return false;
    given.remove_prefix(spaces);
    if (given.size() != token.size()) return false;
    unsigned char diff = 0;  // constant time in the token's length
    for (std::size_t i = 0; i < token.size(); ++i) {
        diff |= static_cast<unsigned char>(given[i] ^ token[i]);
    }
    return diff == 0;
}

struct admin_server::impl {
    impl(const config::config& c, const prometheus::Registry& reg, const metrics& mm, mirror& mir,
         shadow& sh, const gate& g, reconcile_job& rec, control::control_plane& ctl)
        : cfg(c),
          registry(reg),
          m(mm),
          mirror_(mir),
          shadow_(sh),
          gate_(g),
          reconcile_(rec),
          control_(ctl),
          acceptor(ioc) {}

    const config::config& cfg;
    const prometheus::Registry& registry;
    const metrics& m;
    mirror& mirror_;
    shadow& shadow_;
    const gate& gate_;
    reconcile_job& reconcile_;
    control::control_plane& control_;
    asio::io_context ioc{1};
    tcp::acceptor acceptor;
    std::vector<tcp::endpoint> upstream;
    worker_thread thread;
    std::atomic<bool> stopped{false};

    struct endpoint;
    static const std::array<endpoint, 15> endpoints;

    awaitable<void> accept_loop();
    awaitable<void> session(tcp::socket socket);
    awaitable<response_t> route(const request_t& req);
    std::optional<response_t> refuse_unauthorized(const request_t& req) const;
    std::optional<response_t> refuse_mirror_off() const;
    std::optional<response_t> refuse_shadow_off() const;
    awaitable<bool> upstream_reachable();

    // The endpoints (see the table below route()).
    awaitable<response_t> healthz(const request_t& req, std::string_view target);
    awaitable<response_t> readyz(const request_t& req, std::string_view target);
    awaitable<response_t> metrics_text(const request_t& req, std::string_view target);
    awaitable<response_t> config_json(const request_t& req, std::string_view target);
    awaitable<response_t> gate_verdict(const request_t& req, std::string_view target);
    awaitable<response_t> report(const request_t& req, std::string_view target);
    awaitable<response_t> reconcile(const request_t& req, std::string_view target);
    awaitable<response_t> mirror_status(const request_t& req, std::string_view target);
    awaitable<response_t> mirror_retry(const request_t& req, std::string_view target);
    awaitable<response_t> shadow_status(const request_t& req, std::string_view target);
    awaitable<response_t> discrepancies(const request_t& req, std::string_view target);
    awaitable<response_t> stage(const request_t& req, std::string_view target);
    awaitable<response_t> stage_history(const request_t& req, std::string_view target);
    awaitable<response_t> freeze(const request_t& req, std::string_view target);
    awaitable<response_t> unfreeze(const request_t& req, std::string_view target);
    using control_job = std::function<proxy::result<nlohmann::json>()>;
    // Runs `job` on the control plane's thread; its answer as the admin API's response.
    // Runs `job` on the control plane's thread; its answer as the admin API's response. Callers
    // pass a named job: GCC 12 destroys a temporary of a co_await expression twice.
    awaitable<response_t> on_control_thread(control_job job);
    awaitable<proxy::result<nlohmann::json>> run_on_control_thread(control_job fn);
    response_t report_response(std::string_view target);
};

awaitable<bool> admin_server::impl::upstream_reachable() {
    beast::tcp_stream probe(ioc);
    probe.expires_after(readiness_timeout);
    auto [ec, ep] = co_await probe.async_connect(upstream, nothrow);
    beast::error_code ignored;
    probe.socket().close(ignored);
    co_return !ec;
}

namespace {
bool is_get(const request_t& req) {
    return req.method() == http::verb::get || req.method() == http::verb::head;
}
bool is_post(const request_t& req) { return req.method() == http::verb::post; }

response_t error_response(http::status status, std::string_view error, std::string_view detail) {
    nlohmann::json j;
    j["error"] = error;
    if (!detail.empty()) j["detail"] = detail;
    return json_response(status, j);
}
}  // namespace

namespace {
// A refused change is the client's (409, nothing changed); anything else is the database's (503).
response_t change_response(const proxy::result<nlohmann::json>& r) {
    if (r) return json_response(http::status::ok, *r);
    if (r.error().refused) {
        return error_response(http::status::conflict, "refused", r.error().what);
    }
    return error_response(http::status::service_unavailable, "control_unavailable", r.error().what);
}

// ?limit= of a listing: 1 to 100000, 100 when absent; nullopt when it is anything else.
std::optional<std::size_t> limit_param(std::string_view target) {
    auto q = v1::query_param(target, "limit");
    if (!q) return 100;
    char* end = nullptr;
    const unsigned long n = std::strtoul(q->c_str(), &end, 10);
    if (q->empty() || *end != '\0' || n == 0 || n > 100000) return std::nullopt;
    return n;
}
}  // namespace

awaitable<response_t> admin_server::impl::on_control_thread(control_job job) {
    auto r = co_await run_on_control_thread(std::move(job));
    co_return change_response(r);
}

// The admin API, one row per path. Under /admin/ the bearer token is checked before the path is
// looked up, so an unauthenticated client learns nothing of what exists.
struct admin_server::impl::endpoint {
    std::string_view path;
    bool get;  // GET and HEAD
    bool post;
    awaitable<response_t> (impl::*handle)(const request_t& req, std::string_view target);
};

const std::array<admin_server::impl::endpoint, 15> admin_server::impl::endpoints{{
    {"/healthz", true, false, &impl::healthz},
    {"/readyz", true, false, &impl::readyz},
    {"/metrics", true, false, &impl::metrics_text},
    {"/admin/config", true, false, &impl::config_json},
    {"/admin/gate", true, false, &impl::gate_verdict},
    {"/admin/report", true, false, &impl::report},
    {"/admin/reconcile", true, true, &impl::reconcile},
    {"/admin/mirror", true, false, &impl::mirror_status},
    {"/admin/mirror/retry", false, true, &impl::mirror_retry},
    {"/admin/shadow", true, false, &impl::shadow_status},
    {"/admin/discrepancies", true, false, &impl::discrepancies},
    {"/admin/stage", true, true, &impl::stage},
    {"/admin/stage/history", true, false, &impl::stage_history},
    {"/admin/freeze", false, true, &impl::freeze},
    {"/admin/unfreeze", false, true, &impl::unfreeze},
}};

std::optional<response_t> admin_server::impl::refuse_unauthorized(const request_t& req) const {
    // With no token configured the admin API is closed rather than open.
    if (cfg.admin.token.empty()) {
        return error_response(http::status::forbidden, "admin_token_unset",
                              "set " + cfg.admin.token_env + " to enable /admin/ endpoints");
    }
    auto auth = req.find(http::field::authorization);
    std::string_view auth_value =
        auth == req.end() ? std::string_view{}
                          : std::string_view(auth->value().data(), auth->value().size());
    if (bearer_token_matches(auth_value, cfg.admin.token)) return std::nullopt;
    auto res =
        error_response(http::status::unauthorized, "unauthorized", "missing or wrong bearer token");
    res.set(http::field::www_authenticate, "Bearer");
    return res;
}

awaitable<response_t> admin_server::impl::route(const request_t& req) {
    const std::string_view target(req.target().data(), req.target().size());
    const std::string_view path = target.substr(0, target.find('?'));
    if (path.starts_with("/admin/")) {
        if (auto refused = refuse_unauthorized(req)) co_return std::move(*refused);
    }
    const auto row = std::find_if(endpoints.begin(), endpoints.end(),
                                  [&](const endpoint& e) { return e.path == path; });
    if (row == endpoints.end()) {
        co_return error_response(http::status::not_found, "not_found", "no such admin endpoint");
    }
    if (!(row->get && is_get(req)) && !(row->post && is_post(req))) {
        const std::string_view allow = row->get && row->post ? "GET, HEAD, POST"
                                       : row->get            ? "GET, HEAD"
                                                             : "POST";
        auto res = error_response(http::status::method_not_allowed, "method_not_allowed",
                                  std::string("allowed: ") + std::string(allow));
        res.set(http::field::allow, allow);
        co_return res;
    }
    auto handled = (this->*(row->handle))(req, target);
    co_return co_await std::move(handled);
}

awaitable<response_t> admin_server::impl::healthz(const request_t&, std::string_view) {
    co_return make_response(http::status::ok, "text/plain", "ok\n");
}

awaitable<response_t> admin_server::impl::readyz(const request_t&, std::string_view) {
    const bool reachable = co_await upstream_reachable();
    // A replica fenced off the plan while a freeze is set must not take traffic (it cannot know
    // whether a flip happened meanwhile).
    const bool plan_ok = control_.ready();
    const bool ok = reachable && plan_ok;
    nlohmann::json j;
    j["ready"] = ok;
    j["upstream"] = cfg.v1.name;
    j["upstream_reachable"] = reachable;
    j["plan_ok"] = plan_ok;
    if (mirror_.active()) {
        // Not a reason to stop serving (v1 answers, the mirror parks what does not fit), but
        // said here so a deployment check sees it.
        const auto p = mirror_.packet();
        auto& d = j["dolt_packet"];
        d["max_allowed_packet"] = p.server;
        d["needed"] = p.needed;
        d["fits"] = p.known() ? nlohmann::json(p.fits()) : nlohmann::json();
        if (p.known() && !p.fits()) d["remedy"] = p.remedy();
    }
    co_return json_response(ok ? http::status::ok : http::status::service_unavailable, j);
}

awaitable<response_t> admin_server::impl::metrics_text(const request_t&, std::string_view) {
    // The series read from the modules' state at scrape time first, then the whole registry.
    m.refresh();
    if (mirror_.active()) mirror_.refresh_metrics();
    if (shadow_.active()) shadow_.refresh_metrics();
    gate_.refresh_metrics();
    control_.refresh_metrics();
    co_return make_response(http::status::ok, "text/plain; version=0.0.4", exposition(registry));
}

awaitable<response_t> admin_server::impl::config_json(const request_t&, std::string_view) {
    co_return make_response(http::status::ok, "application/json", config::dump_json(cfg) + "\n");
}

awaitable<response_t> admin_server::impl::gate_verdict(const request_t&, std::string_view) {
    co_return make_response(http::status::ok, "application/json", gate_.verdict_json());
}

awaitable<response_t> admin_server::impl::report(const request_t&, std::string_view target) {
    co_return report_response(target);
}

awaitable<response_t> admin_server::impl::reconcile(const request_t& req, std::string_view target) {
    if (is_get(req)) {
        co_return make_response(http::status::ok, "application/json", reconcile_.status_json());
    }
    reconcile_options opts;
    opts.repair = v1::query_param(target, "repair").value_or("") == "1";
    opts.users = v1::query_params(target, "user");
    const bool started = reconcile_.start(std::move(opts));
    nlohmann::json j;
    j["started"] = started;
    if (!started) j["detail"] = "a reconcile is running: GET /admin/reconcile";
    co_return json_response(started ? http::status::accepted : http::status::conflict, j);
}

std::optional<response_t> admin_server::impl::refuse_mirror_off() const {
    if (mirror_.active()) return std::nullopt;
    return error_response(http::status::conflict, "mirror_off",
                          "the stage is off: nothing is mirrored");
}

std::optional<response_t> admin_server::impl::refuse_shadow_off() const {
    if (shadow_.active()) return std::nullopt;
    return error_response(http::status::conflict, "shadow_off",
                          "reads are compared only in the shadow stage");
}

awaitable<response_t> admin_server::impl::mirror_status(const request_t&, std::string_view) {
    if (auto off = refuse_mirror_off()) co_return std::move(*off);
    co_return make_response(http::status::ok, "application/json", mirror_.status_json());
}

awaitable<response_t> admin_server::impl::mirror_retry(const request_t&, std::string_view target) {
    if (auto off = refuse_mirror_off()) co_return std::move(*off);
    const std::string user = v1::query_param(target, "user").value_or("");
    nlohmann::json j;
    j["retried"] = mirror_.retry_parked(user);
    co_return json_response(http::status::ok, j);
}

awaitable<response_t> admin_server::impl::shadow_status(const request_t&, std::string_view) {
    if (auto off = refuse_shadow_off()) co_return std::move(*off);
    co_return make_response(http::status::ok, "application/json", shadow_.status_json());
}

awaitable<response_t> admin_server::impl::discrepancies(const request_t&, std::string_view target) {
    if (auto off = refuse_shadow_off()) co_return std::move(*off);
    const std::string endpoint = v1::query_param(target, "endpoint").value_or("");
    const auto limit = limit_param(target);
    if (!limit) {
        co_return error_response(http::status::bad_request, "bad_limit",
                                 "limit must be a whole number from 1 to 100000");
    }
    co_return make_response(http::status::ok, "application/json",
                            shadow_.discrepancies_json(endpoint, *limit));
}

// Runs `fn` on the control plane's thread and resumes here with its result: no database call
// runs on the admin thread, so a hung database never stalls /metrics or /healthz.
awaitable<proxy::result<nlohmann::json>> admin_server::impl::run_on_control_thread(control_job fn) {
    using answer = proxy::result<nlohmann::json>;
    // The answer comes back through a timer of this thread: it is cancelled (by a handler posted
    // here) once the answer is in, so the timer and the answer are only touched on this thread,
    // and the control thread gives up its reference before it posts.
    struct pending {
        explicit pending(asio::any_io_executor ex)
            : done(ex, std::chrono::steady_clock::time_point::max()) {}
        asio::steady_timer done;
        std::optional<answer> result;
    };
    auto p = std::make_shared<pending>(co_await asio::this_coro::executor);
    const bool queued = control_.submit([p, fn = std::move(fn)]() mutable {
        answer r = fn();
        auto ex = p->done.get_executor();
        asio::post(ex, [p = std::move(p), r = std::move(r)]() mutable {
            p->result = std::move(r);
            p->done.cancel();
        });
    });
    if (!queued) {
        co_return answer(
            proxy::fail("the control plane is not running (control.enabled is "
                        "false, or the service is stopping)"));
    }
    auto [ec] = co_await p->done.async_wait(nothrow);
    (void)ec;  // cancelled: the answer is in (or the admin thread is stopping)
    if (!p->result) co_return answer(proxy::fail("the service is stopping"));
    co_return std::move(*p->result);
}

namespace {
response_t bad_body(const proxy::failure& f) {
    return error_response(http::status::bad_request, "bad_request", f.what);
}
}  // namespace

awaitable<response_t> admin_server::impl::stage(const request_t& req, std::string_view) {
    if (is_get(req)) co_return json_response(http::status::ok, control_.status());
    auto change = control::parse_stage_change(req.body());
    if (!change) co_return bad_body(change.error());
    control_job job = [this, c = *change] { return control_.set_stage(c); };
    co_return co_await on_control_thread(std::move(job));
}

awaitable<response_t> admin_server::impl::stage_history(const request_t&, std::string_view target) {
    const auto limit = limit_param(target);
    if (!limit) {
        co_return error_response(http::status::bad_request, "bad_limit",
                                 "limit must be a whole number from 1 to 100000");
    }
    control_job job = [this, n = *limit] { return control_.history(n); };
    co_return co_await on_control_thread(std::move(job));
}

awaitable<response_t> admin_server::impl::freeze(const request_t& req, std::string_view) {
    auto f = control::parse_freeze(req.body());
    if (!f) co_return bad_body(f.error());
    control_job job = [this, f = *f] { return control_.freeze(f); };
    co_return co_await on_control_thread(std::move(job));
}

awaitable<response_t> admin_server::impl::unfreeze(const request_t& req, std::string_view) {
    auto u = control::parse_unfreeze(req.body());
    if (!u) co_return bad_body(u.error());
    control_job job = [this, u = *u] { return control_.unfreeze(u.who, u.reason); };
    co_return co_await on_control_thread(std::move(job));
}

// GET /admin/report?format=json|md|html&endpoint=&from=&to=: the report from what the gate, the
// comparer and the mirror know now.
response_t admin_server::impl::report_response(std::string_view target) {
    auto bad = [&](const std::string& detail) {
        nlohmann::json j;
        j["error"] = "bad_request";
        j["detail"] = detail;
        return json_response(http::status::bad_request, j);
    };
    const std::string format = v1::query_param(target, "format").value_or("json");
    if (format != "json" && format != "md" && format != "html") {
        return bad("format must be json, md or html");
    }
    comparator::report::filter f;
    f.endpoint = v1::query_param(target, "endpoint").value_or("");
    for (const char* key : {"from", "to"}) {
        if (auto v = v1::query_param(target, key)) {
            auto t = comparator::report::parse_time(*v);
            if (!t) return bad(std::string(key) + " must be Unix milliseconds or an ISO 8601 time");
            (std::string_view(key) == "from" ? f.from_ms : f.to_ms) = t;
        }
    }
    comparator::report::sources in;
    in.gate = nlohmann::json::parse(gate_.verdict_json(), nullptr, false);
    const bool compared = shadow_.active();
    const std::size_t all_kept = cfg.shadow.records.ring + 1;
    in.discrepancies =
        compared ? nlohmann::json::parse(shadow_.discrepancies_json("", all_kept), nullptr, false)
                 : nlohmann::json::array();
    in.differing_paths = compared
                             ? nlohmann::json::parse(shadow_.differing_paths_json(), nullptr, false)
                             : nlohmann::json::array();
    in.mirror = mirror_.active() ? nlohmann::json::parse(mirror_.status_json(), nullptr, false)
                                 : nlohmann::json();
    in.control = control_.status();
    in.confidence = cfg.gate.confidence;
    in.now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
    const auto doc = comparator::report::build(in, f);
    if (format == "md") {
        return make_response(http::status::ok, "text/markdown; charset=utf-8",
                             comparator::report::to_markdown(doc));
    }
    if (format == "html") {
        return make_response(http::status::ok, "text/html; charset=utf-8",
                             comparator::report::to_html(doc));
    }
    return make_response(http::status::ok, "application/json",
                         doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

awaitable<void> admin_server::impl::session(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buf;
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(64 * 1024);
        stream.expires_after(admin_timeout);
        // The whole header section within 8 kB however it arrives (Beast's own limit is per put).
        const auto ec = co_await read_message(stream, buf, parser, false, admin_header_limit);
        if (ec == http::error::header_limit || ec == http::error::body_limit) {
            const bool header = ec == http::error::header_limit;
            nlohmann::json j;
            j["error"] = header ? "header_too_large" : "body_too_large";
            response_t res = json_response(header ? http::status::request_header_fields_too_large
                                                  : http::status::payload_too_large,
                                           j);
            res.keep_alive(false);
            res.prepare_payload();
            co_await http::async_write(stream, res, nothrow);
            break;
        }
        if (ec) break;
        auto req = parser.release();
        response_t res = co_await route(req);
        res.keep_alive(req.keep_alive());
        res.version(req.version());
        res.prepare_payload();
        if (req.method() == http::verb::head) res.body().clear();
        auto [wec, wn] = co_await http::async_write(stream, res, nothrow);
        if (wec || !res.keep_alive()) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

awaitable<void> admin_server::impl::accept_loop() {
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(nothrow);
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
        if (ec) continue;
        asio::co_spawn(ioc, session(std::move(socket)),
                       on_task_end(process_task_failures(), task_kind::admin_session));
    }
}

admin_server::admin_server(const config::config& cfg, const prometheus::Registry& reg,
                           const metrics& m, mirror& mir, shadow& sh, const gate& g,
                           reconcile_job& rec, control::control_plane& ctl)
    : impl_(std::make_unique<impl>(cfg, reg, m, mir, sh, g, rec, ctl)) {
    tcp::resolver resolver(impl_->ioc);
    beast::error_code ec;
    auto up = resolver.resolve(cfg.v1.address.host, std::to_string(cfg.v1.address.port), ec);
    if (ec) throw std::runtime_error("cannot resolve upstream " + cfg.v1.address.host);
    for (const auto& r : up) impl_->upstream.push_back(r.endpoint());

    auto listen =
        resolver.resolve(cfg.admin.listen.host, std::to_string(cfg.admin.listen.port), ec);
    if (ec || listen.empty()) {
        throw std::runtime_error("cannot resolve admin listen address " + cfg.admin.listen.host);
    }
    tcp::endpoint ep = listen.begin()->endpoint();
    auto& acc = impl_->acceptor;
    acc.open(ep.protocol(), ec);
    if (!ec) acc.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acc.bind(ep, ec);
    if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        throw std::runtime_error("cannot listen on admin address " + cfg.admin.listen.host + ":" +
                                 std::to_string(cfg.admin.listen.port) + ": " + ec.message());
    }
}

admin_server::~admin_server() { stop(); }

std::uint16_t admin_server::port() const {
    beast::error_code ec;
    return impl_->acceptor.local_endpoint(ec).port();
}

void admin_server::start() {
    asio::co_spawn(impl_->ioc, impl_->accept_loop(),
                   on_task_end(process_task_failures(), task_kind::admin_accept_loop));
    impl_->thread.start("sg-admin", task_kind::admin_thread,
                        [this](const std::stop_token&) { impl_->ioc.run(); });
}

void admin_server::stop() {
    if (impl_->stopped.exchange(true)) return;
    impl_->ioc.stop();
    impl_->thread.join();
}

}  // namespace sg::proxy
