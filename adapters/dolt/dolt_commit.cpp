// adapters/dolt/dolt_commit: argument building (pure) and the DOLT_COMMIT call.
#include "adapters/dolt/dolt_commit.hpp"

#include "adapters/dolt/values.hpp"

#include <algorithm>
#include <chrono>

namespace sg::dolt {

std::string_view name(commit_policy p) {
    switch (p) {
        case commit_policy::per_user_import: return "per_user_import";
        case commit_policy::once_per_run: return "once_per_run";
        case commit_policy::off: return "off";
    }
    return "off";
}

std::optional<commit_policy> parse_commit_policy(std::string_view s) {
    for (auto p :
         {commit_policy::per_user_import, commit_policy::once_per_run, commit_policy::off}) {
        if (s == name(p)) {
            return p;
        }
    }
    return std::nullopt;
}

std::string_view name(commit_outcome o) {
    switch (o) {
        case commit_outcome::committed: return "committed";
        case commit_outcome::nothing_to_commit: return "nothing_to_commit";
        case commit_outcome::not_dolt: return "not_dolt";
        case commit_outcome::policy_off: return "policy_off";
        case commit_outcome::recorded: return "recorded";
    }
    return "policy_off";
}

dolt_author map_author(std::string_view v1_author) {
    dolt_author a;
    // Name: drop what would break "Name <email>" parsing (Dolt rejects ')'), turn control
    // characters into spaces, collapse runs of spaces, trim.
    for (char ch : v1_author) {
        const auto c = static_cast<unsigned char>(ch);
        if (ch == '(' || ch == ')' || ch == '<' || ch == '>') {
            continue;
        }
        const char out = (c < 0x20 || c == 0x7f) ? ' ' : ch;
        if (out == ' ' && (a.name.empty() || a.name.back() == ' ')) {
            continue;
        }
        a.name.push_back(out);
    }
    while (!a.name.empty() && a.name.back() == ' ') {
        a.name.pop_back();
    }
    if (a.name.empty()) {
        a.name = "unknown";
    }
    // Email: a lowercase slug of the name, so the same v1 author always maps to the same one.
    std::string local;
    for (char ch : a.name) {
        const char c = (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch - 'A' + 'a') : ch;
        const bool keep =
            (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '+';
        if (keep) {
            local.push_back(c);
        } else if (!local.empty() && local.back() != '-') {
            local.push_back('-');
        }
    }
    while (!local.empty() && (local.back() == '-' || local.back() == '.')) {
        local.pop_back();
    }
    while (!local.empty() && local.front() == '.') {
        local.erase(local.begin());
    }
    a.email = (local.empty() ? std::string("unknown") : local) + "@youlab.local";
    return a;
}

std::string format_author(const dolt_author& a) { return a.name + " <" + a.email + ">"; }

std::string dolt_date(std::int64_t epoch_seconds) {
    const std::int64_t t = std::clamp(epoch_seconds, min_datetime_epoch, max_datetime_epoch);
    std::string s = *utc_datetime(t);
    s[10] = 'T';
    return s + "Z";
}

std::string commit_message(std::string_view message) {
    std::string m;
    m.reserve(message.size());
    for (char ch : message) {
        if (ch != '\0') {
            m.push_back(ch);
        }
    }
    if (m.find_first_not_of(" \t\r\n") == std::string::npos) {
        return "(no message)";
    }
    return m;
}

std::vector<std::string> dolt_commit_args(const commit_request& req) {
    return {req.stage_new_tables ? "-A" : "-a",
            "--skip-empty",
            "--author",
            format_author(map_author(req.author)),
            "--date",
            dolt_date(req.time),
            "-m",
            commit_message(req.message)};
}

std::string dolt_commit_sql(const std::vector<std::string>& args, const quote_fn& quote) {
    std::string sql = "CALL DOLT_COMMIT(";
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (i > 0) {
            sql += ", ";
        }
        quote(sql, args[i]);
    }
    sql += ")";
    return sql;
}

result<commit_result> dolt_commit(connection& conn, const commit_request& req) {
    counters& stats = conn.stats();
    if (conn.in_transaction()) {
        stats.dolt_commit_failures.fetch_add(1, std::memory_order_relaxed);
        return adapter_error("DOLT_COMMIT inside an open transaction would revert other writers",
                             "25000");
    }
    auto dolt = conn.is_dolt();
    if (!dolt) {
        stats.dolt_commit_failures.fetch_add(1, std::memory_order_relaxed);
        return dolt.error();
    }
    if (!*dolt) {
        stats.dolt_commits_not_dolt.fetch_add(1, std::memory_order_relaxed);
        return commit_result{commit_outcome::not_dolt, {}};
    }
    const std::string sql = dolt_commit_sql(
        dolt_commit_args(req),
        [&conn](std::string& out, std::string_view s) { conn.append_quoted(out, s); });
    auto rs = conn.query(sql);  // drains every result of the CALL
    if (!rs) {
        stats.dolt_commit_failures.fetch_add(1, std::memory_order_relaxed);
        return rs.error();
    }
    std::string hash;
    if (!rs->data.empty() && !rs->data[0].empty() && rs->data[0][0]) {
        hash = *rs->data[0][0];
    }
    if (hash.empty()) {
        stats.dolt_commits_empty.fetch_add(1, std::memory_order_relaxed);
        return commit_result{commit_outcome::nothing_to_commit, {}};
    }
    stats.dolt_commits.fetch_add(1, std::memory_order_relaxed);
    return commit_result{commit_outcome::committed, std::move(hash)};
}

result<commit_result> commit_after_import(connection& conn, commit_policy policy,
                                          std::span<const user_rows> users, std::int64_t now) {
    if (policy != commit_policy::per_user_import || users.empty()) {
        return commit_result{};
    }
    commit_request req;
    if (users.size() == 1) {
        const user_rows& u = users.front();
        req.message = "mirror " + u.user_id;
        req.author = "shadowgate";
        req.time = now;
        const auto head = std::find_if(u.commits.begin(), u.commits.end(),
                                       [&](const v1::commit& c) { return c.sha == u.head; });
        if (head != u.commits.end()) {
            req.message += ": " + std::string(summary_line(head->message));
            req.author = head->author;
            req.time = head->commit_time;
        }
        req.message += " (v1 " + u.head.substr(0, 12) + ")";
    } else {
        req.message = "mirror " + std::to_string(users.size()) + " users:";
        for (std::size_t i = 0; i < users.size() && i < 10; ++i) {
            req.message += (i == 0 ? " " : ", ") + users[i].user_id;
        }
        if (users.size() > 10) {
            req.message += ", ...";
        }
        req.author = "shadowgate";
        req.time = now;
    }
    return dolt_commit(conn, req);
}

result<commit_result> commit_end_of_run(connection& conn, commit_policy policy,
                                        std::string_view message, std::int64_t now,
                                        bool stage_new_tables) {
    if (policy != commit_policy::once_per_run) {
        return commit_result{};
    }
    return dolt_commit(conn,
                       commit_request{std::string(message), "shadowgate", now, stage_new_tables});
}

result<commit_result> commit_or_record(connection& conn, const commit_request& req,
                                       std::string_view user_id, std::string_view v1_commit) {
    if (conn.in_transaction()) {
        conn.stats().dolt_commit_failures.fetch_add(1, std::memory_order_relaxed);
        return adapter_error("a Dolt commit inside an open transaction would revert other writers",
                             "25000");
    }
    auto dolt = conn.is_dolt();
    if (!dolt) {
        return dolt.error();
    }
    if (*dolt) {
        return dolt_commit(conn, req);
    }
    const std::string message = commit_message(req.message);
    const std::string author = format_author(map_author(req.author));
    const std::string date = dolt_date(req.time);
    const std::string now = datetime6(std::chrono::system_clock::now());
    const std::vector<param> values{param::of(now),
                                    param::of(author),
                                    param::of(date),
                                    param::of(message),
                                    user_id.empty() ? param::null_value() : param::of(user_id),
                                    v1_commit.empty() ? param::null_value() : param::of(v1_commit)};
    auto r = conn.execute_prepared(
        "INSERT INTO mirror_commit_log (made_at, author, commit_date, message, user_id, "
        "v1_commit) VALUES (?,?,?,?,?,?)",
        values);
    if (!r) {
        return r.error();
    }
    return commit_result{commit_outcome::recorded, {}};
}

}  // namespace sg::dolt
