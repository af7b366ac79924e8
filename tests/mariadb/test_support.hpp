// tests/mariadb/test_support: what the dolt_tests cases share: the connection details of the
// MariaDB server the ctest fixture started (SG_MARIADB_ENV names its conn.env), a scratch
// database per test case, builders of v1 user states, and a field-by-field model comparison.
#pragma once

#include "adapters/dolt/connection.hpp"
#include "adapters/dolt/store.hpp"
#include "adapters/v1/model.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

// REQUIRE(r) on a result prints the error (or "ok") instead of needing operator<< for T and E.
namespace Catch {
template <class T>
struct StringMaker<boost::system::result<T, sg::dolt::error>> {
    static std::string convert(const boost::system::result<T, sg::dolt::error>& r) {
        return r ? std::string("ok") : "error: " + r.error().to_string();
    }
};
}  // namespace Catch

namespace sg::dolt::testing {

struct server_env {
    std::string host;
    unsigned port = 0;
    std::string socket;
    std::string user;
    std::string password;
    std::string database;
    std::string root_user;
    std::string root_password;
};

// Parsed once from the file named by $SG_MARIADB_ENV (KEY=VALUE lines written by
// tests/mariadb/server.sh). Throws std::runtime_error when it is missing: run through ctest,
// which starts the server first.
const server_env& env();

// Administrator options (TCP), no default database unless given.
options root_options(const std::string& database = "");

// A database that exists for the lifetime of this object (dropped by the destructor), with all
// rights on it granted to the dedicated test user.
class scratch_db {
public:
    scratch_db();
    ~scratch_db();
    scratch_db(const scratch_db&) = delete;
    scratch_db& operator=(const scratch_db&) = delete;

    const std::string& name() const { return name_; }
    // The dedicated (non-root) user on this database, over TCP or the unix socket.
    options user_options(bool via_socket = false) const;
    // A connected session of the dedicated user; fails the test case when it cannot connect.
    connection connect(bool via_socket = false) const;

private:
    std::string name_;
};

// A deterministic 40-hex "sha" for a name (FNV-1a based; only uniqueness matters here).
std::string fake_sha(const std::string& seed);

// A plausible v1 user: an init commit, then `versions` commits per block cycling through
// `blocks` blocks (several sharing one second), authors and messages as v1 writes them, a
// pending diff per block. Deterministic for the same arguments.
v1::user_state make_user(const std::string& user_id, int blocks, int versions);

// Fails the current test case (Catch2 CHECKs, so every difference is listed) unless a and b are
// equal field by field, versions compared by (label, ordinal).
void require_same(const v1::user_state& a, const v1::user_state& b);

// The store speaks rows (derive_rows of a v1 state); these take and give v1 states, which the
// cases build and compare. read_state gives the v1 bytes the rows keep (audit_state).
result<write_stats> write_states(connection& conn, std::span<const v1::user_state> users,
                                 const write_options& opts = {});
result<apply_stats> apply_state(connection& conn, const v1::user_state& desired,
                                const write_options& opts = {}, const apply_options& aopts = {});
result<std::optional<v1::user_state>> read_state(connection& conn, std::string_view user_id);

}  // namespace sg::dolt::testing
