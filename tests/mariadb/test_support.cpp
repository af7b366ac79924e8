// tests/mariadb/test_support: fixture access, scratch databases, model builders, comparison.
#include "tests/mariadb/test_support.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <stdexcept>
#include <tuple>

namespace sg::dolt::testing {

const server_env& env() {
    static const server_env e = [] {
        const char* path = std::getenv("SG_MARIADB_ENV");
        if (path == nullptr) {
            throw std::runtime_error(
                "SG_MARIADB_ENV is not set: run dolt_tests through ctest (the mariadb fixture "
                "starts the server), or `tests/mariadb/server.sh start DIR` and point "
                "SG_MARIADB_ENV at DIR/conn.env");
        }
        std::ifstream in(path);
        if (!in) {
            throw std::runtime_error(std::string("cannot read ") + path);
        }
        std::map<std::string, std::string> kv;
        for (std::string line; std::getline(in, line);) {
            const auto eq = line.find('=');
            if (eq != std::string::npos) {
                kv[line.substr(0, eq)] = line.substr(eq + 1);
            }
        }
        server_env s;
        s.host = kv["SG_MARIADB_HOST"];
        s.port = static_cast<unsigned>(std::stoul(kv["SG_MARIADB_PORT"]));
        s.socket = kv["SG_MARIADB_SOCKET"];
        s.user = kv["SG_MARIADB_USER"];
        s.password = kv["SG_MARIADB_PASSWORD"];
        s.database = kv["SG_MARIADB_DATABASE"];
        s.root_user = kv["SG_MARIADB_ROOT_USER"];
        s.root_password = kv["SG_MARIADB_ROOT_PASSWORD"];
        return s;
    }();
    return e;
}

options root_options(const std::string& database) {
    options o;
    o.host = env().host;
    o.port = env().port;
    o.user = env().root_user;
    o.password = env().root_password;
    o.database = database;
    return o;
}

namespace {

connection root_connection() {
    connection c(root_options());
    auto r = c.connect();
    if (!r) {
        FAIL("root connect: " << r.error().to_string());
    }
    return c;
}

void root_exec(const std::string& sql) {
    connection c = root_connection();
    auto r = c.execute(sql);
    if (!r) {
        FAIL(sql << ": " << r.error().to_string());
    }
}

}  // namespace

scratch_db::scratch_db() {
    static std::atomic<int> counter{0};
    name_ = "sgt_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
    root_exec("DROP DATABASE IF EXISTS " + name_);
    root_exec("CREATE DATABASE " + name_ + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin");
    root_exec("GRANT ALL PRIVILEGES ON " + name_ + ".* TO '" + env().user + "'@'%'");
    root_exec("GRANT ALL PRIVILEGES ON " + name_ + ".* TO '" + env().user + "'@'localhost'");
}

scratch_db::~scratch_db() {
    connection c(root_options());
    if (c.connect()) {
        (void)c.execute("DROP DATABASE IF EXISTS " + name_);
    }
}

options scratch_db::user_options(bool via_socket) const {
    options o;
    o.host = env().host;
    o.port = env().port;
    if (via_socket) {
        o.unix_socket = env().socket;
    }
    o.user = env().user;
    o.password = env().password;
    o.database = name_;
    return o;
}

connection scratch_db::connect(bool via_socket) const {
    connection c(user_options(via_socket));
    auto r = c.connect();
    if (!r) {
        FAIL("connect: " << r.error().to_string());
    }
    return c;
}

std::string fake_sha(const std::string& seed) {
    std::string out;
    std::uint64_t h = 1469598103934665603ull;
    for (int round = 0; out.size() < 40; ++round) {
        for (char ch : seed) {
            h = (h ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
        }
        h = (h ^ static_cast<std::uint64_t>(round)) * 1099511628211ull;
        char buf[17];
        std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
        out += buf;
    }
    out.resize(40);
    return out;
}

v1::user_state make_user(const std::string& user_id, int blocks, int versions) {
    static const char* labels[] = {"student",          "engagement_strategy", "journey",
                                   "operating_manual", "course_syllabus",     "goals"};
    v1::user_state u;
    u.user_id = user_id;
    std::int64_t t = 1795000000;  // 2026-11-18
    std::vector<v1::commit> newest_first;
    v1::commit init;
    init.sha = fake_sha(user_id + "/init");
    init.message = "Initialize user storage";
    init.author = "unknown";
    init.commit_time = t;
    newest_first.push_back(init);

    std::map<std::string, std::vector<v1::block_version>> history;  // oldest first
    std::string parent = init.sha;
    for (int i = 0; i < blocks * versions; ++i) {
        const std::string label =
            labels[i % blocks % 6] + (blocks > 6 ? std::to_string(i % blocks) : std::string());
        const int rev = i / blocks;
        if (i % 3 != 0) {
            ++t;  // every third commit shares the previous one's second, as v1's bursts do
        }
        v1::commit c;
        c.sha = fake_sha(user_id + "/" + std::to_string(i));
        c.parents = {parent};
        const bool agent = rev % 4 == 3;
        const std::string author = rev == 0 ? "system" : agent ? "agent:tutor" : "user";
        const std::string summary = rev == 0 ? "Initialize " + label + " block"
                                    : agent  ? "Apply agent suggestion: Suggest append for clar"
                                             : "Update " + label;
        c.message = summary + "\n\nAuthor: " + author;
        c.author = author;
        c.commit_time = t;
        c.commit_tz_offset_minutes = 60;
        parent = c.sha;
        newest_first.insert(newest_first.begin(), c);

        v1::block_version v;
        v.sha = c.sha;
        v.label = label;
        v.source = "---\nblock: " + label +
                   "\nupdated_at: '2026-11-22T04:16:23.872725+00:00'\n"
                   "title: " +
                   label + "\n---\n\n## About Me\n\nI like chess.\n\nrev " + std::to_string(rev);
        v.message = c.message;
        v.author = author;
        v.commit_time = t;
        v.commit_tz_offset_minutes = 60;
        history[label].push_back(v);
    }
    for (std::size_t i = 0; i < newest_first.size(); ++i) {
        newest_first[i].seq = static_cast<std::int64_t>(i);
    }
    u.commits = newest_first;
    u.head = newest_first.front().sha;
    for (auto& [label, hist] : history) {
        for (std::size_t k = 0; k < hist.size(); ++k) {
            hist[k].ordinal = static_cast<std::int64_t>(hist.size() - 1 - k);
            u.versions.push_back(hist[k]);
        }
        u.blocks.push_back(v1::block{label, hist.back().source, hist.back().sha});

        v1::pending_diff d;
        d.id = fake_sha(user_id + "/diff/" + label).substr(0, 8) + "-c4a6-4223-a985-3225ac49d6af";
        d.agent_id = "tutor";
        d.block_label = label;
        d.operation = "append";
        d.current_value = hist.back().source;
        d.proposed_value = "Agent appended note.";
        d.reasoning = "Suggest append for clarity";
        d.confidence = "high";
        d.status = "pending";
        d.created_at = "2026-11-22T04:16:24.120548";
        d.raw_json = "{\n  \"id\": \"" + d.id + "\",\n  \"user_id\": \"" + user_id +
                     "\",\n  \"agent_id\": \"tutor\",\n  \"status\": \"pending\"\n}";
        u.diffs.push_back(d);
    }
    std::sort(u.diffs.begin(), u.diffs.end(),
              [](const auto& a, const auto& b) { return a.id < b.id; });
    u.diffs_fingerprint = fake_sha(user_id + "/fingerprint");
    return u;
}

void require_same(const v1::user_state& a, const v1::user_state& b) {
    CHECK(a.user_id == b.user_id);
    CHECK(a.head == b.head);
    CHECK(a.diffs_fingerprint == b.diffs_fingerprint);

    REQUIRE(a.commits.size() == b.commits.size());
    for (std::size_t i = 0; i < a.commits.size(); ++i) {
        const auto& x = a.commits[i];
        const auto& y = b.commits[i];
        INFO("commit " << i << " " << x.sha);
        CHECK(x.sha == y.sha);
        CHECK(x.parents == y.parents);
        CHECK(x.message == y.message);
        CHECK(x.author == y.author);
        CHECK(x.commit_time == y.commit_time);
        CHECK(x.commit_tz_offset_minutes == y.commit_tz_offset_minutes);
        CHECK(x.seq == y.seq);
    }

    REQUIRE(a.blocks.size() == b.blocks.size());
    for (std::size_t i = 0; i < a.blocks.size(); ++i) {
        INFO("block " << a.blocks[i].label);
        CHECK(a.blocks[i].label == b.blocks[i].label);
        CHECK(a.blocks[i].source == b.blocks[i].source);
        CHECK(a.blocks[i].commit == b.blocks[i].commit);
    }

    auto by_label_ordinal = [](std::vector<v1::block_version> v) {
        std::sort(v.begin(), v.end(), [](const auto& x, const auto& y) {
            return std::tie(x.label, x.ordinal) < std::tie(y.label, y.ordinal);
        });
        return v;
    };
    const auto va = by_label_ordinal(a.versions);
    const auto vb = by_label_ordinal(b.versions);
    REQUIRE(va.size() == vb.size());
    for (std::size_t i = 0; i < va.size(); ++i) {
        INFO("version " << va[i].label << " #" << va[i].ordinal);
        CHECK(va[i].sha == vb[i].sha);
        CHECK(va[i].label == vb[i].label);
        CHECK(va[i].source == vb[i].source);
        CHECK(va[i].deleted == vb[i].deleted);
        CHECK(va[i].message == vb[i].message);
        CHECK(va[i].author == vb[i].author);
        CHECK(va[i].commit_time == vb[i].commit_time);
        CHECK(va[i].commit_tz_offset_minutes == vb[i].commit_tz_offset_minutes);
        CHECK(va[i].ordinal == vb[i].ordinal);
    }

    REQUIRE(a.diffs.size() == b.diffs.size());
    for (std::size_t i = 0; i < a.diffs.size(); ++i) {
        const auto& x = a.diffs[i];
        const auto& y = b.diffs[i];
        INFO("diff " << x.id);
        CHECK(x.id == y.id);
        CHECK(x.raw_json == y.raw_json);
        CHECK(x.agent_id == y.agent_id);
        CHECK(x.block_label == y.block_label);
        CHECK(x.field == y.field);
        CHECK(x.operation == y.operation);
        CHECK(x.current_value == y.current_value);
        CHECK(x.proposed_value == y.proposed_value);
        CHECK(x.reasoning == y.reasoning);
        CHECK(x.confidence == y.confidence);
        CHECK(x.status == y.status);
        CHECK(x.source_query == y.source_query);
        CHECK(x.created_at == y.created_at);
        CHECK(x.reviewed_at == y.reviewed_at);
        CHECK(x.applied_commit == y.applied_commit);
    }
}

result<write_stats> write_states(connection& conn, std::span<const v1::user_state> users,
                                 const write_options& opts) {
    std::vector<user_rows> rows;
    for (const auto& u : users) rows.push_back(derive_rows(u));
    return write_users(conn, rows, opts);
}

result<apply_stats> apply_state(connection& conn, const v1::user_state& desired,
                                const write_options& opts, const apply_options& aopts) {
    return apply_user(conn, derive_rows(desired), opts, aopts);
}

result<std::optional<v1::user_state>> read_state(connection& conn, std::string_view user_id) {
    auto r = read_user(conn, user_id);
    if (!r) return r.error();
    if (!*r) return std::optional<v1::user_state>{};
    return std::optional<v1::user_state>(audit_state(**r));
}

}  // namespace sg::dolt::testing
