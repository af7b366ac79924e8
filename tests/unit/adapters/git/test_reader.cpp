// tests/unit/adapters/git/test_reader: the v1 storage reader on real repositories, checked against
// the git CLI (rev-list, log, cat-file) and, where python3-git is installed, against the v1
// reference storage code (tests/v1ref/v1ref_storage.py, GitPython): the v1 sample storage from the
// fixtures, then generated repositories for merges, same-second commits, odd block names and
// contents, empty and corrupt repositories, symlinks out of the data dir, hostile ids and pending
// diffs.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "adapters/git/history.hpp"
#include "adapters/git/reader.hpp"
#include "adapters/v1/routes.hpp"
#include "adapters/v1/state_diff.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using sg::git::error_kind;
using sg::git::warning_kind;

namespace {

// --------------------------------------------------------------------------------------------
// processes and files

void hermetic_git_env() {
    static const bool done = [] {
        // No user or system config may change what the git CLI prints or commits.
        ::setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
        ::setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
        ::setenv("GIT_AUTHOR_NAME", "YouLab System", 1);
        ::setenv("GIT_AUTHOR_EMAIL", "system@youlab.local", 1);
        ::setenv("GIT_COMMITTER_NAME", "YouLab System", 1);
        ::setenv("GIT_COMMITTER_EMAIL", "system@youlab.local", 1);
        return true;
    }();
    (void)done;
}

std::string q(std::string_view s) {
    std::string out = "'";
    for (const char c : s) {
        if (c == '\'') {
            out += "'\\''";
        } else {
            out += c;
        }
    }
    return out + "'";
}

struct cmd_result {
    int status = -1;
    std::string out;
};

cmd_result run(const std::string& cmd) {
    hermetic_git_env();
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return {};
    cmd_result r;
    char buf[65536];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    const int st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

std::string must(const std::string& cmd) {
    auto r = run(cmd);
    INFO(cmd);
    REQUIRE(r.status == 0);
    return r.out;
}

std::string git_in(const std::string& dir, const std::string& args) {
    return must("git -C " + q(dir) + " -c safe.directory='*' " + args);
}

std::vector<std::string> split(std::string_view s, char sep) {
    std::vector<std::string> out;
    while (!s.empty()) {
        const auto at = s.find(sep);
        out.emplace_back(s.substr(0, at));
        if (at == std::string_view::npos) break;
        s.remove_prefix(at + 1);
    }
    return out;
}

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

void write_file(const std::string& path, const std::string& bytes) {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << bytes;
    REQUIRE(f.good());
}

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

class temp_dir {
public:
    temp_dir() {
        char tmpl[] = "/tmp/sg-git-test-XXXXXX";
        const char* p = ::mkdtemp(tmpl);
        REQUIRE(p != nullptr);
        path_ = p;
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

std::string src_dir() {
    if (const char* s = std::getenv("SHADOWGATE_SRC")) return s;
    fs::path root(__FILE__);
    for (int i = 0; i < 5; ++i) root = root.parent_path();  // tests/unit/adapters/git/<this file>
    return root.string();
}

std::string shared_dir() {
    if (const char* s = std::getenv("SHADOWGATE_SHARED")) return s;
    return src_dir() + "/../shared";
}

// --------------------------------------------------------------------------------------------
// building repositories the way v1 does (plus what v1 never does, for the odd cases)

class repo_builder {
public:
    explicit repo_builder(std::string dir) : dir_(std::move(dir)) {
        fs::create_directories(dir_);
        git("init -q -b master");
    }
    const std::string& dir() const { return dir_; }
    std::string git(const std::string& args) const { return git_in(dir_, args); }
    void write(const std::string& rel, const std::string& bytes) const {
        write_file(dir_ + "/" + rel, bytes);
    }
    void remove(const std::string& rel) const { fs::remove_all(dir_ + "/" + rel); }
    std::string head() const { return trim(git("rev-parse HEAD")); }

    static std::string dated(std::int64_t t) {
        const std::string d = "'@" + std::to_string(t) + " +0000'";
        return "GIT_AUTHOR_DATE=" + d + " GIT_COMMITTER_DATE=" + d + " ";
    }

    // Stages everything but pending_diffs/ (v1 never commits it) and commits `message` verbatim.
    std::string commit(const std::string& message, std::int64_t t) const {
        write_file(dir_ + "/.git/SG_MSG", message);
        git("add -A -- . ':!pending_diffs'");
        must(dated(t) + "git -C " + q(dir_) +
             " commit -q --allow-empty --allow-empty-message --cleanup=verbatim -F .git/SG_MSG");
        return head();
    }

    std::string merge(const std::string& branches, const std::string& message, std::int64_t t,
                      const std::string& strategy = "") const {
        must(dated(t) + "git -C " + q(dir_) + " merge -q --no-ff --no-edit " + strategy + " -m " +
             q(message) + " " + branches);
        return head();
    }

    // A merge that conflicts: `resolve` writes the resolution, then the merge is committed.
    template <class F>
    std::string conflicting_merge(const std::string& branch, const std::string& message,
                                  std::int64_t t, F resolve) const {
        const auto r = run(dated(t) + "git -C " + q(dir_) + " merge -q --no-ff --no-edit " +
                           branch + " >/dev/null 2>&1");
        REQUIRE(r.status != 0);
        resolve();
        return commit(message, t);
    }

private:
    std::string dir_;
};

// --------------------------------------------------------------------------------------------
// what git says, object by object

struct git_object {
    std::string type;
    std::string content;
};

// `git cat-file --batch` for many revision specs at once.
std::vector<std::optional<git_object>> cat_file(const std::string& dir,
                                                const std::vector<std::string>& specs) {
    std::string input;
    for (const auto& s : specs) input += s + "\n";
    const auto list = dir + "/.git/SG_BATCH";
    write_file(list, input);
    const auto out = git_in(dir, "cat-file --batch < " + q(list));
    std::vector<std::optional<git_object>> objects;
    std::size_t pos = 0;
    for (std::size_t i = 0; i < specs.size(); ++i) {
        const auto nl = out.find('\n', pos);
        REQUIRE(nl != std::string::npos);
        const auto header = out.substr(pos, nl - pos);
        pos = nl + 1;
        if (header.ends_with(" missing") || header.ends_with(" ambiguous")) {
            objects.emplace_back();
            continue;
        }
        const auto f = split(header, ' ');
        REQUIRE(f.size() == 3);
        const auto size = std::stoull(f[2]);
        objects.push_back(git_object{f[1], out.substr(pos, size)});
        pos += size + 1;
    }
    return objects;
}

struct raw_tree_entry {
    std::string mode;
    std::string name;
};

std::vector<raw_tree_entry> parse_tree(const std::string& t) {
    std::vector<raw_tree_entry> out;
    std::size_t pos = 0;
    while (pos < t.size()) {
        const auto sp = t.find(' ', pos);
        const auto nul = t.find('\0', sp);
        out.push_back(raw_tree_entry{t.substr(pos, sp - pos), t.substr(sp + 1, nul - sp - 1)});
        pos = nul + 1 + 20;
    }
    return out;
}

bool is_blob_mode(const std::string& m) { return m == "100644" || m == "100755" || m == "120000"; }

std::vector<std::string> versions_of(const sg::v1::user_state& st, const std::string& label) {
    std::vector<std::pair<std::int64_t, std::string>> v;
    for (const auto& x : st.versions) {
        if (x.label == label) v.emplace_back(x.ordinal, x.sha);
    }
    std::sort(v.begin(), v.end());
    std::vector<std::string> out;
    for (std::size_t i = 0; i < v.size(); ++i) {
        CHECK(v[i].first == static_cast<std::int64_t>(i));
        out.push_back(v[i].second);
    }
    return out;
}

const sg::v1::block_version* version(const sg::v1::user_state& st, const std::string& label,
                                     const std::string& sha) {
    for (const auto& x : st.versions) {
        if (x.label == label && x.sha == sha) return &x;
    }
    return nullptr;
}

// Checks everything the reader returned for {base}/{user} against the git CLI. Returns the labels
// git says ever existed (safe "*.md" blobs under memory-blocks/ in any commit).
std::set<std::string> check_against_git(const std::string& base, const std::string& user,
                                        const sg::git::user_read& r) {
    INFO("user " << user);
    const std::string dir = base + "/" + user;
    const auto& st = r.state;
    CHECK(st.user_id == user);
    if (st.head.empty()) {
        CHECK(run("git -C " + q(dir) + " rev-parse -q --verify HEAD >/dev/null").status != 0);
        CHECK(st.commits.empty());
        CHECK(st.blocks.empty());
        CHECK(st.versions.empty());
        return {};
    }
    CHECK(st.head == trim(git_in(dir, "rev-parse HEAD")));

    // Commits: `git rev-list HEAD` order, parents, times, messages.
    const auto lines = split(git_in(dir, "rev-list --parents HEAD"), '\n');
    REQUIRE(st.commits.size() == lines.size());
    const auto times = split(git_in(dir, "log --format='%H %ct %ci'"), '\n');
    REQUIRE(times.size() == lines.size());
    std::vector<std::string> shas;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const auto f = split(lines[i], ' ');
        const auto& c = st.commits[i];
        CHECK(c.sha == f[0]);
        CHECK(c.seq == static_cast<std::int64_t>(i));
        CHECK(c.parents == std::vector<std::string>(f.begin() + 1, f.end()));
        const auto t = split(times[i], ' ');  // sha, %ct, date, time, zone
        REQUIRE(t.size() == 5);
        CHECK(t[0] == c.sha);
        CHECK(c.commit_time == std::stoll(t[1]));
        const int sign = t[4][0] == '-' ? -1 : 1;
        CHECK(c.commit_tz_offset_minutes ==
              sign * (std::stoi(t[4].substr(1, 2)) * 60 + std::stoi(t[4].substr(3, 2))));
        shas.push_back(c.sha);
    }
    const auto objects = cat_file(dir, shas);
    for (std::size_t i = 0; i < shas.size(); ++i) {
        REQUIRE(objects[i]);
        const auto& body = objects[i]->content;
        const auto sep = body.find("\n\n");
        const auto message = sep == std::string::npos ? std::string() : body.substr(sep + 2);
        CHECK(st.commits[i].message == message);
        CHECK(st.commits[i].author == sg::git::author_footer(message));
    }

    // Labels: every safe "*.md" blob name in memory-blocks/ of any commit.
    std::vector<std::string> tree_specs;
    for (const auto& s : shas) tree_specs.push_back(s + ":memory-blocks");
    const auto trees = cat_file(dir, tree_specs);
    std::set<std::string> labels;
    std::set<std::string> head_labels;
    for (std::size_t i = 0; i < trees.size(); ++i) {
        if (!trees[i] || trees[i]->type != "tree") continue;
        for (const auto& e : parse_tree(trees[i]->content)) {
            if (!e.name.ends_with(".md") || !is_blob_mode(e.mode)) continue;
            const auto label = e.name.substr(0, e.name.size() - 3);
            if (!sg::v1::is_safe_identifier(label)) continue;
            labels.insert(label);
            if (i == 0) head_labels.insert(label);
        }
    }
    std::set<std::string> read_labels;
    for (const auto& v : st.versions) read_labels.insert(v.label);
    CHECK(read_labels == labels);

    // Versions: `git log --format=%H -- memory-blocks/{label}.md`, and the blob at each.
    for (const auto& label : labels) {
        INFO("label " << label);
        const auto path = "memory-blocks/" + label + ".md";
        const auto expected = split(git_in(dir, "log --format=%H -- " + q(path)), '\n');
        const auto got = versions_of(st, label);
        CHECK(got == expected);
        std::vector<std::string> specs;
        for (const auto& sha : got) specs.push_back(sha + ":" + path);
        const auto blobs = cat_file(dir, specs);
        for (std::size_t i = 0; i < got.size(); ++i) {
            const auto* v = version(st, label, got[i]);
            REQUIRE(v != nullptr);
            const bool is_blob = blobs[i] && blobs[i]->type == "blob";
            CHECK(v->deleted == !is_blob);
            CHECK(v->source == (is_blob ? blobs[i]->content : std::string()));
            const auto& c = *std::find_if(st.commits.begin(), st.commits.end(),
                                          [&](const auto& x) { return x.sha == got[i]; });
            CHECK(v->message == c.message);
            CHECK(v->author == c.author);
            CHECK(v->commit_time == c.commit_time);
            CHECK(v->commit_tz_offset_minutes == c.commit_tz_offset_minutes);
        }
    }

    // Blocks at HEAD, sorted by label, with their exact bytes and newest commit.
    std::vector<std::string> block_labels;
    for (const auto& b : st.blocks) block_labels.push_back(b.label);
    CHECK(std::is_sorted(block_labels.begin(), block_labels.end()));
    CHECK(std::set<std::string>(block_labels.begin(), block_labels.end()) == head_labels);
    std::vector<std::string> specs;
    for (const auto& b : st.blocks) specs.push_back("HEAD:memory-blocks/" + b.label + ".md");
    const auto blobs = cat_file(dir, specs);
    for (std::size_t i = 0; i < st.blocks.size(); ++i) {
        REQUIRE(blobs[i]);
        CHECK(st.blocks[i].source == blobs[i]->content);
        const auto v = versions_of(st, st.blocks[i].label);
        REQUIRE_FALSE(v.empty());
        CHECK(st.blocks[i].commit == v.front());
    }
    return labels;
}

// What the v1 reference storage code (GitPython) says for each user: commit order, authors,
// each label's history, and the pending diffs as json.loads reads them. nullopt when
// /usr/bin/python3 with GitPython is not installed.
std::optional<json> v1_view(const std::string& base,
                            const std::map<std::string, std::set<std::string>>& labels) {
    static const char* script = R"PY(
import json, os, sys
from pathlib import Path
src, base, spec_path = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, os.path.join(src, "tests", "v1ref"))
from v1ref_storage import UserStorage
out = {}
for user, labels in json.load(open(spec_path)).items():
    s = UserStorage(Path(base), user)
    commits = list(s.repo.iter_commits("HEAD"))
    u = {"order": [c.hexsha for c in commits],
         "authors": [UserStorage._author(c) for c in commits],
         "history": {l: [c.hexsha for c in s.repo.iter_commits(paths=f"memory-blocks/{l}.md")]
                     for l in labels},
         "diffs": []}
    d = Path(base, user, "pending_diffs")
    if d.is_dir():
        for p in sorted(d.glob("*.json")):
            try:
                u["diffs"].append(json.loads(p.read_text(encoding="utf-8")))
            except Exception:
                pass
    s.close()
    out[user] = u
print(json.dumps(out))
)PY";
    if (run("/usr/bin/python3 -c 'import git, yaml' >/dev/null 2>&1").status != 0) {
        // A missing dependency fails: a comparison that silently vanishes proves nothing.
        FAIL("python3-git and python3-yaml are needed (deploy/setup.sh installs them)");
    }
    temp_dir tmp;
    write_file(tmp.path() + "/view.py", script);
    json spec = json::object();
    for (const auto& [user, ls] : labels)
        spec[user] = std::vector<std::string>(ls.begin(), ls.end());
    write_file(tmp.path() + "/spec.json", spec.dump());
    const auto out = must("/usr/bin/python3 " + q(tmp.path() + "/view.py") + " " + q(src_dir()) +
                          " " + q(base) + " " + q(tmp.path() + "/spec.json"));
    return json::parse(out);
}

void check_against_v1(const json& view, const sg::v1::user_state& st,
                      const std::set<std::string>& labels) {
    INFO("user " << st.user_id);
    const auto& u = view.at(st.user_id);
    REQUIRE(u.at("order").size() == st.commits.size());
    for (std::size_t i = 0; i < st.commits.size(); ++i) {
        CHECK(st.commits[i].sha == u.at("order")[i].get<std::string>());
        CHECK(st.commits[i].author == u.at("authors")[i].get<std::string>());
    }
    for (const auto& label : labels) {
        INFO("label " << label);
        CHECK(versions_of(st, label) == u.at("history").at(label).get<std::vector<std::string>>());
    }
}

sg::git::user_read must_read(const sg::git::storage_reader& reader, const std::string& user) {
    auto r = reader.read_user(user);
    INFO("user " << user << ": " << (r ? "" : r.error().message));
    REQUIRE(r.has_value());
    return std::move(*r);
}

sg::git::storage_reader must_open(const std::string& dir) {
    auto r = sg::git::storage_reader::open(dir);
    REQUIRE(r.has_value());
    return std::move(*r);
}

bool has_warning(const sg::git::user_read& r, warning_kind k, const std::string& subject) {
    return std::any_of(r.warnings.begin(), r.warnings.end(), [&](const sg::git::warning& w) {
        return w.kind == k && w.subject == subject;
    });
}

template <class T>
error_kind error_of(const sg::git::result<T>& r) {
    REQUIRE_FALSE(r.has_value());
    return r.error().kind;
}

}  // namespace

// ------------------------------------------------------------------------------------------------

TEST_CASE("git reader: the v1 sample storage, against git and v1's GitPython", "[git]") {
    temp_dir tmp;
    const auto tarball = shared_dir() + "/fixtures/youlab-v1-sample.tar.gz";
    REQUIRE(fs::exists(tarball));
    must("tar -xzf " + q(tarball) + " -C " + q(tmp.path()));
    const auto reader = must_open(tmp.path());

    const auto users = reader.list_users();
    REQUIRE(users.has_value());
    CHECK(users->skipped.empty());
    std::vector<std::string> dirs;
    for (const auto& e : fs::directory_iterator(tmp.path())) dirs.push_back(e.path().filename());
    std::sort(dirs.begin(), dirs.end());
    CHECK(users->users == dirs);
    CHECK(users->users.size() == 13);

    std::map<std::string, std::set<std::string>> labels;
    std::map<std::string, sg::git::user_read> reads;
    std::size_t versions = 0;
    std::size_t same_second = 0;
    for (const auto& user : users->users) {
        auto r = must_read(reader, user);
        CHECK(r.warnings.empty());
        labels[user] = check_against_git(tmp.path(), user, r);
        versions += r.state.versions.size();
        for (std::size_t i = 1; i < r.state.commits.size(); ++i) {
            same_second += r.state.commits[i].commit_time == r.state.commits[i - 1].commit_time;
        }

        // The capture scan's view agrees with the full read.
        const auto h = reader.head_and_fingerprint(user);
        REQUIRE(h.has_value());
        CHECK(h->head == r.state.head);
        CHECK(h->diffs.value == r.state.diffs_fingerprint);
        const auto content = reader.diffs_content_hash(user);
        REQUIRE(content.has_value());
        CHECK(*content == r.diffs_content_hash);

        // Pending diffs: one per file, the exact text kept.
        const auto diffs_dir = tmp.path() + "/" + user + "/pending_diffs";
        std::size_t files = 0;
        for (const auto& e : fs::directory_iterator(diffs_dir)) {
            files += e.path().extension() == ".json";
        }
        CHECK(r.state.diffs.size() == files);
        for (const auto& d : r.state.diffs) {
            CHECK(d.raw_json == read_file(diffs_dir + "/" + d.id + ".json"));
        }
        reads.emplace(user, std::move(r));
    }
    CHECK(versions > 100);
    CHECK(same_second > 50);  // the fixture is mostly same-second commits: order must still match

    const auto view = v1_view(tmp.path(), labels);
    if (!view) return;
    for (const auto& [user, r] : reads) {
        check_against_v1(*view, r.state, labels[user]);
        const auto& diffs = view->at(user).at("diffs");
        REQUIRE(diffs.size() == r.state.diffs.size());
        for (std::size_t i = 0; i < diffs.size(); ++i) {
            const auto& j = diffs[i];
            const auto& d = r.state.diffs[i];
            CHECK(d.id == j.at("id").get<std::string>());
            CHECK(d.agent_id == j.at("agent_id").get<std::string>());
            CHECK(d.block_label == j.at("block_label").get<std::string>());
            CHECK(d.operation == j.at("operation").get<std::string>());
            CHECK(d.current_value == j.at("current_value").get<std::string>());
            CHECK(d.proposed_value == j.at("proposed_value").get<std::string>());
            CHECK(d.reasoning == j.at("reasoning").get<std::string>());
            CHECK(d.confidence == j.at("confidence").get<std::string>());
            CHECK(d.status == j.at("status").get<std::string>());
            CHECK(d.created_at == j.at("created_at").get<std::string>());
            CHECK(d.field.has_value() == !j.at("field").is_null());
            CHECK(d.reviewed_at.has_value() == !j.at("reviewed_at").is_null());
            if (d.reviewed_at) CHECK(*d.reviewed_at == j.at("reviewed_at").get<std::string>());
            CHECK(d.applied_commit.has_value() == !j.at("applied_commit").is_null());
            if (d.applied_commit) {
                CHECK(*d.applied_commit == j.at("applied_commit").get<std::string>());
            }
        }
    }
}

TEST_CASE("git reader: merges, same-second commits and clock skew, against git", "[git]") {
    temp_dir tmp;
    // Commit times per scenario: all in one second, rising, and jittered (ties and skew: a
    // parent can be newer than its child).
    const std::vector<std::pair<std::string, std::function<std::int64_t(int)>>> clocks = {
        {"same", [](int) { return std::int64_t{1795320983}; }},
        {"rising", [](int i) { return std::int64_t{1795320983} + i; }},
        {"jitter", [](int i) { return std::int64_t{1795320983} + (i * 7919) % 5 - 2; }},
    };
    std::map<std::string, std::set<std::string>> labels;
    std::map<std::string, sg::git::user_read> reads;
    const auto reader = must_open(tmp.path());
    for (const auto& [user, clock] : clocks) {
        int tick = 0;
        const auto t = [&, &clock = clock] { return clock(tick++); };
        repo_builder b(tmp.path() + "/" + user);
        b.write(".gitignore", "# YouLab user storage\n*.pyc\n__pycache__/\n");
        b.commit("Initialize user storage", t());
        b.write("memory-blocks/student.md", "A\n");
        b.write("memory-blocks/journey.md", "J1\n");
        const auto c1 = b.commit("Initialize student block\n\nAuthor: system", t());

        b.git("checkout -q -b side");
        b.write("memory-blocks/student.md", "S1\n");
        const auto s1 = b.commit("Side edit\n\nAuthor: user", t());
        b.write("memory-blocks/notes.md", "N1\n");
        b.commit("Notes\n\nAuthor: agent:tutor", t());
        b.git("checkout -q master");
        b.write("memory-blocks/journey.md", "J2\n");
        b.commit("Update journey\n\nAuthor: user", t());
        b.write("memory-blocks/journey.md", "J3\n");
        b.write("memory-blocks/progress.md", "P1\n");
        const auto two = b.commit("Two blocks at once\n\nAuthor: system", t());
        // Clean merge: student.md comes from the side branch (TREESAME to the second parent).
        const auto m1 = b.merge("side", "Merge side\n\nAuthor: system", t());

        b.git("checkout -q -b side2");
        b.write("memory-blocks/student.md", "X\n");
        b.commit("Side2 edit\n\nAuthor: user", t());
        b.git("checkout -q master");
        b.write("memory-blocks/student.md", "Y\n");
        b.commit("Master edit\n\nAuthor: user", t());
        // Conflicting merge resolved to something new: differs from both parents.
        const auto m2 = b.conflicting_merge("side2", "Merge side2\n\nAuthor: user", t(),
                                            [&] { b.write("memory-blocks/student.md", "XY\n"); });

        b.git("checkout -q -b side3");
        b.write("memory-blocks/journey.md", "Discarded\n");
        const auto discarded = b.commit("Discarded edit\n\nAuthor: user", t());
        b.git("checkout -q master");
        // "-s ours": the merge keeps master's tree (TREESAME to the first parent).
        const auto m3 = b.merge("side3", "Merge side3 (ours)\n\nAuthor: system", t(), "-s ours");

        b.remove("memory-blocks/progress.md");
        const auto deleted = b.commit("Delete progress\n\nAuthor: user", t());
        b.write("memory-blocks/progress.md", "P2\n");
        const auto recreated = b.commit("Re-create progress\n\nAuthor: user", t());
        b.write("memory-blocks/student.md", "---\r\nblock: student\r\n---\r\n\r\nCRLF body\r\n");
        b.write("memory-blocks/journey.md",
                "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x8e\x93\n");
        b.commit("CRLF and unicode\n\nAuthor: user", t());
        b.commit("Empty commit\n\nAuthor: system", t());

        // Octopus merge of two branches.
        const auto base = b.head();
        b.git("checkout -q -b side4");
        b.write("memory-blocks/notes.md", "N2\n");
        b.commit("Side4\n\nAuthor: user", t());
        b.git("checkout -q -b side5 " + base);
        b.write("memory-blocks/journey.md", "J5\n");
        b.commit("Side5\n\nAuthor: user", t());
        b.git("checkout -q master");
        const auto octopus = b.merge("side4 side5", "Octopus\n\nAuthor: system", t());
        CHECK(split(trim(b.git("rev-list --parents -n1 HEAD")), ' ').size() == 4);

        auto r = must_read(reader, user);
        CHECK(r.warnings.empty());
        labels[user] = check_against_git(tmp.path(), user, r);
        CHECK(labels[user] == std::set<std::string>{"journey", "notes", "progress", "student"});

        // The cases named, beyond "equal to git".
        const auto& st = r.state;
        const auto student = versions_of(st, "student");
        const auto journey = versions_of(st, "journey");
        const auto progress = versions_of(st, "progress");
        const auto has = [](const std::vector<std::string>& v, const std::string& s) {
            return std::find(v.begin(), v.end(), s) != v.end();
        };
        CHECK(has(student, s1));
        CHECK(has(student, c1));
        CHECK_FALSE(has(student, m1));         // TREESAME merge is not listed
        CHECK(has(student, m2));               // a merge that changed the block is
        CHECK_FALSE(has(journey, discarded));  // the "-s ours" side is never walked
        CHECK_FALSE(has(journey, m3));
        CHECK(has(journey, two));
        CHECK(has(progress, two));
        CHECK(has(progress, deleted));
        CHECK(version(st, "progress", deleted)->deleted);
        CHECK(has(progress, recreated));
        CHECK(version(st, "progress", recreated)->source == "P2\n");
        CHECK_FALSE(has(versions_of(st, "notes"), octopus));
        CHECK(st.blocks.size() == 4);
        CHECK(st.blocks[2].label == "progress");
        CHECK(st.blocks[3].source == "---\r\nblock: student\r\n---\r\n\r\nCRLF body\r\n");
        reads.emplace(user, std::move(r));
    }
    // Different clocks give different orders (the scenario really tests tie-breaking).
    CHECK(reads.at("same").state.commits[1].sha != reads.at("rising").state.commits[1].sha);

    const auto view = v1_view(tmp.path(), labels);
    if (!view) return;
    for (const auto& [user, r] : reads) check_against_v1(*view, r.state, labels[user]);
}

TEST_CASE("git reader: random branch-and-merge histories, against git", "[git]") {
    temp_dir tmp;
    const auto reader = must_open(tmp.path());
    for (const unsigned seed : {20261122u, 7u}) {
        const std::string user = "rand" + std::to_string(seed);
        INFO(user);
        std::mt19937 rng(seed);
        const auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
        // Times within 4 seconds: many ties, and parents newer than their children.
        const auto t = [&] {
            return std::int64_t{1795320983} + static_cast<std::int64_t>(pick(4));
        };
        repo_builder b(tmp.path() + "/" + user);
        b.write(".gitignore", "x\n");
        b.commit("Initialize user storage", t());
        const std::vector<std::string> branches = {"master", "b1", "b2", "b3"};
        for (std::size_t i = 1; i < branches.size(); ++i) b.git("branch " + branches[i]);
        const std::vector<std::string> labels = {"student", "journey", "progress"};
        int merges = 0;
        for (int step = 0; step < 30; ++step) {
            const auto branch = branches[pick(branches.size())];
            b.git("checkout -q " + branch);
            if (pick(3) != 0) {
                const auto file = "memory-blocks/" + labels[pick(labels.size())] + ".md";
                if (pick(6) == 0) {
                    b.remove(file);
                } else {
                    b.write(file, "step " + std::to_string(step) + "\n");
                }
                b.commit("Step " + std::to_string(step) + "\n\nAuthor: user", t());
                continue;
            }
            auto other = branches[pick(branches.size())];
            if (other == branch) continue;
            const std::string how = pick(4) == 0 ? "-s ours" : pick(2) == 0 ? "-X theirs" : "";
            const auto r = run(repo_builder::dated(t()) + "git -C " + q(b.dir()) +
                               " merge -q --no-ff --no-edit " + how +
                               " -m 'Merge\n\nAuthor: " + "system' " + other + " >/dev/null 2>&1");
            if (r.status != 0) {
                b.git("merge --abort");
            } else {
                ++merges;
            }
        }
        b.git("checkout -q master");
        // An octopus that keeps master's tree: all branches reachable from HEAD.
        b.merge("b1 b2 b3", "Final octopus", t(), "-s ours");
        CHECK(merges > 3);
        const auto rd = must_read(reader, user);
        check_against_git(tmp.path(), user, rd);
    }
}

TEST_CASE("git reader: odd block names, modes and contents", "[git]") {
    temp_dir tmp;
    const auto reader = must_open(tmp.path());
    repo_builder b(tmp.path() + "/odd");
    std::int64_t t = 1795320983;
    b.write(".gitignore", "x\n");
    b.commit("Initialize user storage", t);
    b.write("memory-blocks/student.md", "s1\n");
    b.write("memory-blocks/stx.md", "x1\n");
    b.write("memory-blocks/qa.md", "q1\n");
    b.write("memory-blocks/caf\xc3\xa9.md", "unicode label\n");
    b.write("memory-blocks/bin.md", std::string("a\0b\xff\r\n", 6));
    b.commit("Blocks\n\nAuthor: user", t);
    // Labels that are git wildcards: v1's pathspec matches other files too.
    b.write("memory-blocks/st*.md", "star\n");
    b.write("memory-blocks/q?.md", "question\n");
    b.write("memory-blocks/[sx]tudent.md", "bracket\n");
    b.write("memory-blocks/s*p.md", "crosses a slash\n");
    b.commit("Wildcards\n\nAuthor: user", t);
    b.write("memory-blocks/student.md", "s2\n");
    b.commit("Student again\n\nAuthor: user", t + 1);
    b.write("memory-blocks/sub/deep.md", "deep\n");  // "*" crosses "/" in a pathspec
    b.write("memory-blocks/qb.md", "q2\n");
    b.commit("Deep\n\nAuthor: user", t + 1);
    // Names that are not blocks, or not safe.
    b.write("memory-blocks/.hidden.md", "h\n");
    b.write("memory-blocks/a..b.md", "dots\n");
    b.write("memory-blocks/README", "not a block\n");
    b.write("memory-blocks/dir.md/inner.md", "a directory named like a block\n");
    REQUIRE(::symlink("/etc/passwd", (b.dir() + "/memory-blocks/link.md").c_str()) == 0);
    b.write("memory-blocks/exec.md", "exec\n");
    b.commit("Odd names\n\nAuthor: user", t + 2);
    REQUIRE(::chmod((b.dir() + "/memory-blocks/exec.md").c_str(), 0755) == 0);
    const auto mode_change = b.commit("Mode only\n\nAuthor: user", t + 2);

    const auto unsafe_before = sg::git::count(warning_kind::unsafe_label);
    const auto r = must_read(reader, "odd");
    CHECK(sg::git::count(warning_kind::unsafe_label) == unsafe_before + 2);
    const auto labels = check_against_git(tmp.path(), "odd", r);
    CHECK(labels == std::set<std::string>{"[sx]tudent", "bin", "caf\xc3\xa9", "exec", "link", "q?",
                                          "qa", "qb", "s*p", "st*", "student", "stx"});
    CHECK(has_warning(r, warning_kind::unsafe_label, "odd/memory-blocks/.hidden.md"));
    CHECK(has_warning(r, warning_kind::unsafe_label, "odd/memory-blocks/a..b.md"));
    CHECK(has_warning(r, warning_kind::non_blob_block, "odd/memory-blocks/dir.md"));
    CHECK(r.warnings.size() == 3);

    const auto& st = r.state;
    const auto block = [&](const std::string& label) {
        const auto it = std::find_if(st.blocks.begin(), st.blocks.end(),
                                     [&](const auto& x) { return x.label == label; });
        REQUIRE(it != st.blocks.end());
        return *it;
    };
    CHECK(block("link").source == "/etc/passwd");  // the blob git stores, not the target
    CHECK(block("bin").source == std::string("a\0b\xff\r\n", 6));
    CHECK(versions_of(st, "exec").front() == mode_change);  // a mode change touches the file
    CHECK(versions_of(st, "st*").size() == 3);              // student.md and stx.md changes count
    CHECK(versions_of(st, "s*p").size() == 2);  // and memory-blocks/sub/deep.md for this one
    CHECK(versions_of(st, "q?").size() == 3);

    const auto view = v1_view(tmp.path(), {{"odd", labels}});
    if (view) check_against_v1(*view, st, labels);
}

TEST_CASE("git reader: empty repositories, no blocks, odd HEADs, corruption", "[git]") {
    temp_dir tmp;
    const auto data = tmp.path() + "/data";
    const auto reader = must_open((fs::create_directories(data), data));
    const std::int64_t t = 1795320983;

    SECTION("an empty repository reads as no history, with a warning") {
        repo_builder b(data + "/empty");
        fs::create_directories(data + "/empty/pending_diffs");
        const auto r = must_read(reader, "empty");
        check_against_git(data, "empty", r);
        CHECK(r.state.head.empty());
        CHECK(has_warning(r, warning_kind::empty_repository, "empty"));
        const auto h = reader.head_and_fingerprint("empty");
        REQUIRE(h.has_value());
        CHECK(h->head.empty());
        CHECK(h->diffs.value == r.state.diffs_fingerprint);
    }
    SECTION("a user with no blocks") {
        repo_builder b(data + "/noblocks");
        b.write(".gitignore", "x\n");
        b.commit("Initialize user storage", t);
        const auto r = must_read(reader, "noblocks");
        CHECK(r.warnings.empty());
        check_against_git(data, "noblocks", r);
        REQUIRE(r.state.commits.size() == 1);
        CHECK(r.state.commits[0].author == "unknown");
        CHECK(r.state.blocks.empty());
        CHECK(r.state.versions.empty());
        CHECK(r.state.diffs.empty());  // no pending_diffs/ at all
    }

    repo_builder b(data + "/u");
    b.write(".gitignore", "x\n");
    b.commit("Initialize user storage", t);
    b.write("memory-blocks/student.md", "one\n");
    b.commit("One\n\nAuthor: user", t);
    b.write("memory-blocks/student.md", "two\n");
    const auto head = b.commit("Two\n\nAuthor: user", t + 1);

    SECTION("packed objects and refs, a detached HEAD and a locked index: as git reads them") {
        b.git("gc -q --prune=now");
        REQUIRE_FALSE(fs::exists(data + "/u/.git/refs/heads/master"));
        REQUIRE(run("ls " + q(data + "/u/.git/objects/pack/") + "*.pack >/dev/null").status == 0);
        auto h = reader.head_and_fingerprint("u");
        REQUIRE(h.has_value());
        CHECK(h->head == head);
        b.git("checkout -q --detach");
        h = reader.head_and_fingerprint("u");
        REQUIRE(h.has_value());
        CHECK(h->head == head);
        write_file(data + "/u/.git/index.lock", "");
        const auto r = must_read(reader, "u");
        CHECK(r.state.head == head);
        check_against_git(data, "u", r);
    }
    SECTION("HEAD on a branch that does not exist yet: an empty repository") {
        write_file(data + "/u/.git/HEAD", "ref: refs/heads/unborn\n");
        const auto r = must_read(reader, "u");
        CHECK(r.state.head.empty());
        CHECK(r.state.commits.empty());
        const auto h = reader.head_and_fingerprint("u");
        REQUIRE(h.has_value());
        CHECK(h->head.empty());
    }
    SECTION("a truncated HEAD is an error for that user only") {
        write_file(data + "/u/.git/HEAD", "");
        const auto before = sg::git::count(error_kind::repository);
        CHECK(error_of(reader.read_user("u")) == error_kind::repository);
        CHECK(error_of(reader.head_and_fingerprint("u")) == error_kind::repository);
        CHECK(sg::git::count(error_kind::repository) == before + 2);
        const auto users = reader.list_users();
        REQUIRE(users.has_value());
        CHECK(users->users == std::vector<std::string>{"u"});
    }
    SECTION("a garbage object or a missing commit is corrupt; HEAD is still known") {
        const auto blob = trim(b.git("rev-parse HEAD:memory-blocks/student.md"));
        const auto path = data + "/u/.git/objects/" + blob.substr(0, 2) + "/" + blob.substr(2);
        fs::permissions(path, fs::perms::owner_write, fs::perm_options::add);
        write_file(path, "this is not a zlib stream");
        CHECK(error_of(reader.read_user("u")) == error_kind::corrupt);
        const auto h = reader.head_and_fingerprint("u");
        REQUIRE(h.has_value());
        CHECK(h->head == head);

        const auto parent = trim(b.git("rev-parse HEAD~1"));
        fs::remove(data + "/u/.git/objects/" + parent.substr(0, 2) + "/" + parent.substr(2));
        const auto r = reader.read_user("u");
        CHECK(error_of(r) == error_kind::corrupt);
    }
    SECTION("objects borrowed through alternates are not read") {
        REQUIRE(run("git clone -q --shared " + q(data + "/u") + " " + q(tmp.path() + "/src") +
                    " && git clone -q --shared " + q(tmp.path() + "/src") + " " +
                    q(data + "/borrower"))
                    .status == 0);
        CHECK(error_of(reader.read_user("borrower")) == error_kind::corrupt);
        const auto h = reader.head_and_fingerprint("borrower");
        REQUIRE(h.has_value());
        CHECK(h->head == head);
    }
}

TEST_CASE("git reader: symlinks out of the data dir are never followed", "[git]") {
    temp_dir tmp;
    const auto data = tmp.path() + "/data";
    const auto outside = tmp.path() + "/outside";
    const std::int64_t t = 1795320983;
    const std::string diff_json = R"({"id": "d1", "user_id": "u", "agent_id": "tutor",
 "block_label": "student", "field": null, "operation": "append", "current_value": "",
 "proposed_value": "p", "reasoning": "r", "confidence": "low", "source_query": null,
 "status": "pending", "created_at": "2026-11-22T04:16:24.025569"})";
    const auto make_user = [&](const std::string& dir) {
        repo_builder b(dir);
        b.write("memory-blocks/student.md", "s\n");
        b.commit("Init\n\nAuthor: system", t);
        return b.head();
    };
    make_user(outside + "/victim");
    write_file(outside + "/diffs/d1.json", diff_json);
    fs::create_directories(data);
    const auto reader = must_open(data);

    // {data}/linked -> a real user outside.
    fs::create_directory_symlink(outside + "/victim", data + "/linked");
    // pending_diffs/ -> outside.
    make_user(data + "/diffslink");
    fs::create_directory_symlink(outside + "/diffs", data + "/diffslink/pending_diffs");
    // one diff file -> outside; the other is real.
    make_user(data + "/filelink");
    write_file(data + "/filelink/pending_diffs/d1.json", diff_json);
    fs::create_symlink(outside + "/diffs/d1.json", data + "/filelink/pending_diffs/evil.json");
    REQUIRE(::mkfifo((data + "/filelink/pending_diffs/fifo.json").c_str(), 0600) == 0);
    // .git -> outside, .git as a gitdir file, .git/objects -> outside.
    fs::create_directories(data + "/gitlink");
    fs::create_directory_symlink(outside + "/victim/.git", data + "/gitlink/.git");
    fs::create_directories(data + "/gitfile");
    write_file(data + "/gitfile/.git", "gitdir: " + outside + "/victim/.git\n");
    make_user(data + "/objlink");
    fs::rename(data + "/objlink/.git/objects", outside + "/objects");
    fs::create_directory_symlink(outside + "/objects", data + "/objlink/.git/objects");

    const auto users = reader.list_users();
    REQUIRE(users.has_value());
    CHECK(users->users == std::vector<std::string>{"diffslink", "filelink", "objlink"});
    std::map<std::string, std::string> skipped;
    for (const auto& s : users->skipped) skipped[s.name] = s.reason;
    CHECK(skipped == std::map<std::string, std::string>{{"gitfile", ".git is not a directory"},
                                                        {"gitlink", ".git is a symlink"},
                                                        {"linked", "is a symlink"}});

    for (const std::string user : {"linked", "gitlink", "gitfile"}) {
        INFO(user);
        CHECK(error_of(reader.read_user(user)) == error_kind::unsafe_path);
        CHECK(error_of(reader.head_and_fingerprint(user)) == error_kind::unsafe_path);
    }
    CHECK(error_of(reader.read_user("diffslink")) == error_kind::unsafe_path);
    CHECK(error_of(reader.head_and_fingerprint("diffslink")) == error_kind::unsafe_path);
    CHECK(error_of(reader.diffs_content_hash("diffslink")) == error_kind::unsafe_path);
    CHECK(error_of(reader.read_user("objlink")) == error_kind::unsafe_path);

    const auto r = must_read(reader, "filelink");
    REQUIRE(r.state.diffs.size() == 1);
    CHECK(r.state.diffs[0].id == "d1");
    CHECK(has_warning(r, warning_kind::unsafe_diff_file, "filelink/pending_diffs/evil.json"));
    CHECK(has_warning(r, warning_kind::unsafe_diff_file, "filelink/pending_diffs/fifo.json"));
    const auto h = reader.head_and_fingerprint("filelink");
    REQUIRE(h.has_value());
    CHECK(h->diffs.value == r.state.diffs_fingerprint);

    // A data dir reached through a symlink is resolved once, at open.
    fs::create_directory_symlink(data, tmp.path() + "/data-link");
    const auto via_link = must_open(tmp.path() + "/data-link");
    CHECK(via_link.data_dir() == fs::canonical(data).string());
    CHECK(must_read(via_link, "filelink").state.head == r.state.head);
}

TEST_CASE("git reader: hostile user ids build no path", "[git]") {
    temp_dir tmp;
    const auto data = tmp.path() + "/data";
    repo_builder outside(tmp.path() + "/outside");
    outside.write("a", "a");
    outside.commit("x", 1);
    for (const std::string& name :
         {std::string(".hidden"), std::string("back\\slash"), std::string("ctl\x01")}) {
        repo_builder b(data + "/" + name);
    }
    fs::create_directories(data + "/nogit");
    write_file(data + "/plainfile", "x");
    const auto reader = must_open(data);

    const auto users = reader.list_users();
    REQUIRE(users.has_value());
    CHECK(users->users.empty());
    REQUIRE(users->skipped.size() == 3);
    for (const auto& s : users->skipped) CHECK(s.reason == "not a safe identifier");

    for (const std::string& id :
         {std::string(), std::string("."), std::string(".."), std::string("../outside"),
          std::string("a/b"), std::string(".git"), std::string(".hidden"),
          std::string("back\\slash"), std::string("a\0b", 3), std::string(300, 'a'),
          std::string("x\n"), std::string("/etc")}) {
        INFO(id);
        CHECK(error_of(reader.read_user(id)) == error_kind::invalid_id);
        CHECK(error_of(reader.head_and_fingerprint(id)) == error_kind::invalid_id);
        CHECK(error_of(reader.diffs_content_hash(id)) == error_kind::invalid_id);
    }
    CHECK(error_of(reader.read_user("nogit")) == error_kind::not_found);
    CHECK(error_of(reader.read_user("missing")) == error_kind::not_found);
    CHECK(error_of(reader.read_user("plainfile")) == error_kind::unsafe_path);
    CHECK(error_of(sg::git::read_user(tmp.path() + "/nope", "u")) == error_kind::not_found);
    CHECK(error_of(sg::git::list_users(tmp.path() + "/data/plainfile")) == error_kind::unsafe_path);
}

TEST_CASE("git reader: pending diffs, fingerprints and content hashes", "[git]") {
    temp_dir tmp;
    const auto data = tmp.path() + "/data";
    repo_builder b(data + "/u");
    b.write("memory-blocks/student.md", "s\n");
    b.commit("Init\n\nAuthor: system", 1795320983);
    const auto reader = must_open(data);
    const auto diff = [](const std::string& id, const std::string& status) {
        return "{\n  \"id\": \"" + id +
               "\",\n  \"user_id\": \"u\",\n  \"agent_id\": \"tutor\",\n  \"block_label\": "
               "\"student\",\n  \"field\": null,\n  \"operation\": \"append\",\n  "
               "\"current_value\": \"s\\n\",\n  \"proposed_value\": \"caf\\u00e9\",\n  "
               "\"reasoning\": \"r\",\n  \"confidence\": \"medium\",\n  \"source_query\": null,\n"
               "  \"status\": \"" +
               status +
               "\",\n  \"created_at\": \"2026-11-22T04:16:24\",\n  \"reviewed_at\": null,\n  "
               "\"applied_commit\": null\n}";
    };
    const auto dir = data + "/u/pending_diffs/";

    const auto empty_fp = reader.head_and_fingerprint("u");  // no pending_diffs/ yet
    REQUIRE(empty_fp.has_value());
    fs::create_directories(dir);
    const auto empty_dir_fp = reader.head_and_fingerprint("u");
    REQUIRE(empty_dir_fp.has_value());
    CHECK(empty_fp->diffs.value == empty_dir_fp->diffs.value);

    write_file(dir + "b.json", diff("b", "approved"));
    write_file(dir + "a.json", diff("a", "pending"));
    write_file(dir + "bad.json", "{\"id\": ");
    write_file(dir + "dup.json", diff("a", "rejected"));
    write_file(dir + ".hidden.json", diff("hidden", "pending"));  // Python's glob skips it
    write_file(dir + "notes.txt", "not a diff");
    fs::create_directories(dir + "sub.json");

    auto r = must_read(reader, "u");
    REQUIRE(r.state.diffs.size() == 2);
    CHECK(r.state.diffs[0].id == "a");
    CHECK(r.state.diffs[0].status == "pending");  // a.json wins over dup.json for id "a"
    CHECK(r.state.diffs[0].proposed_value == "caf\xc3\xa9");
    CHECK(r.state.diffs[0].raw_json == diff("a", "pending"));
    CHECK(r.state.diffs[1].id == "b");
    CHECK(has_warning(r, warning_kind::malformed_diff, "u/pending_diffs/bad.json"));
    CHECK(has_warning(r, warning_kind::malformed_diff, "u/pending_diffs/dup.json"));
    CHECK(has_warning(r, warning_kind::odd_diff_field, "u/pending_diffs/dup.json"));
    CHECK(has_warning(r, warning_kind::unsafe_diff_file, "u/pending_diffs/sub.json"));
    CHECK(r.warnings.size() == 4);
    CHECK(r.diffs_racy);  // just written

    auto h = reader.head_and_fingerprint("u");
    REQUIRE(h.has_value());
    CHECK(h->diffs.value == r.state.diffs_fingerprint);
    CHECK(h->diffs.racy);
    CHECK(h->diffs.value != empty_dir_fp->diffs.value);
    CHECK(*reader.diffs_content_hash("u") == r.diffs_content_hash);
    // Stable while nothing changes.
    CHECK(reader.head_and_fingerprint("u")->diffs.value == h->diffs.value);

    // A same-size rewrite (what reject after approve does to "status") changes the content hash;
    // the fingerprint changes too unless it happened within one timestamp tick, which `racy`
    // covers.
    const auto before = *h;
    const auto content_before = r.diffs_content_hash;
    write_file(dir + "b.json", diff("b", "rejected"));
    h = reader.head_and_fingerprint("u");
    REQUIRE(h.has_value());
    CHECK((h->diffs.value != before.diffs.value || h->diffs.racy));
    CHECK(*reader.diffs_content_hash("u") != content_before);
    // A size change always changes it.
    write_file(dir + "b.json", diff("b", "superseded"));
    CHECK(reader.head_and_fingerprint("u")->diffs.value != h->diffs.value);
    // Adding or removing a file too.
    fs::remove(dir + "bad.json");
    r = must_read(reader, "u");
    CHECK(reader.head_and_fingerprint("u")->diffs.value == r.state.diffs_fingerprint);
    CHECK(r.state.diffs[1].status == "superseded");

    // Gone again: as empty. A regular file in its place: refused.
    fs::remove_all(dir);
    CHECK(reader.head_and_fingerprint("u")->diffs.value == empty_fp->diffs.value);
    CHECK(must_read(reader, "u").state.diffs.empty());
    write_file(data + "/u/pending_diffs", "not a directory");
    CHECK(error_of(reader.read_user("u")) == error_kind::unsafe_path);
}

TEST_CASE("git reader: a user as of an earlier commit", "[git]") {
    temp_dir tmp;
    const auto reader = must_open(tmp.path());
    repo_builder b(tmp.path() + "/u");
    b.write(".gitignore", "*.pyc\n");
    b.commit("Initialize user storage", 1795320983);
    b.write("memory-blocks/student.md", "A\n");
    const auto c1 = b.commit("Initialize student block\n\nAuthor: system", 1795320983);
    b.write("memory-blocks/student.md", "B\n");
    b.write("memory-blocks/journey.md", "J\n");
    const auto c2 = b.commit("Two blocks\n\nAuthor: user", 1795320984);
    b.remove("memory-blocks/journey.md");
    b.write("memory-blocks/student.md", "C\n");
    const auto c3 = b.commit("Drop journey\n\nAuthor: agent:x", 1795320984);
    write_file(b.dir() + "/pending_diffs/d1.json", "{not json but today's");

    auto at2 = reader.read_user_at_commit("u", c2);
    REQUIRE(at2.has_value());
    CHECK(at2->state.head == c2);
    CHECK(at2->state.commits.size() == 3);
    REQUIRE(at2->state.blocks.size() == 2);
    CHECK(at2->state.blocks[0].label == "journey");
    CHECK(at2->state.blocks[1].source == "B\n");
    CHECK(versions_of(at2->state, "student") == std::vector<std::string>{c2, c1});

    // The same as reading the repository with HEAD moved back there.
    auto full = reader.read_user("u");
    REQUIRE(full.has_value());
    CHECK(full->state.head == c3);
    b.git("reset -q --hard " + c2);
    auto moved = reader.read_user("u");
    REQUIRE(moved.has_value());
    CHECK(sg::v1::diff_states(moved->state, at2->state).empty());
    // Reachability does not matter: c3 is no longer reachable from HEAD, and still readable.
    auto at3 = reader.read_user_at_commit("u", c3);
    REQUIRE(at3.has_value());
    CHECK(sg::v1::diff_states(full->state, at3->state).empty());

    auto bad = reader.read_user_at_commit("u", c2.substr(0, 12));
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().kind == sg::git::error_kind::invalid_id);
    auto missing = reader.read_user_at_commit("u", std::string(40, 'a'));
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().kind == sg::git::error_kind::not_found);
    auto none = reader.read_user_at_commit("u", "");
    REQUIRE_FALSE(none.has_value());
}

TEST_CASE("git reader: kept-open repositories never serve stale history", "[git]") {
    temp_dir tmp;
    auto reader = must_open(tmp.path());
    reader.keep_open_repositories(2);
    repo_builder b(tmp.path() + "/u");
    b.write("memory-blocks/student.md", "A\n");
    const auto c1 = b.commit("One\n\nAuthor: user", 1795320983);
    auto first = reader.read_user("u");
    REQUIRE(first.has_value());
    CHECK(first->state.head == c1);

    // A new commit (a loose object the kept repository has not seen).
    b.write("memory-blocks/student.md", "B\n");
    const auto c2 = b.commit("Two\n\nAuthor: user", 1795320984);
    auto second = reader.read_user("u");
    REQUIRE(second.has_value());
    CHECK(second->state.head == c2);
    CHECK(versions_of(second->state, "student") == std::vector<std::string>{c2, c1});

    // Everything repacked (loose objects gone, one new pack), then a new commit on top.
    b.git("gc -q --prune=now");
    b.write("memory-blocks/student.md", "C\n");
    const auto c3 = b.commit("Three\n\nAuthor: user", 1795320985);
    auto third = reader.read_user("u");
    REQUIRE(third.has_value());
    CHECK(third->state.head == c3);
    CHECK(third->state.blocks.at(0).source == "C\n");

    // History rewritten: the kept repository follows the ref.
    b.git("reset -q --hard " + c1);
    auto fourth = reader.read_user("u");
    REQUIRE(fourth.has_value());
    CHECK(fourth->state.head == c1);
    CHECK(versions_of(fourth->state, "student") == std::vector<std::string>{c1});

    // Same answers as a reader without kept repositories, for several users in turn.
    for (const char* name : {"v", "w", "x"}) {
        repo_builder o(tmp.path() + "/" + name);
        o.write("memory-blocks/goals.md", std::string(name) + "\n");
        o.commit("Init\n\nAuthor: system", 1795320990);
    }
    const auto plain = must_open(tmp.path());
    for (int round = 0; round < 2; ++round) {
        for (const char* name : {"u", "v", "w", "x"}) {
            auto kept = reader.read_user(name);
            auto fresh = plain.read_user(name);
            REQUIRE(kept.has_value());
            REQUIRE(fresh.has_value());
            CHECK(sg::v1::diff_states(fresh->state, kept->state).empty());
        }
    }
}

namespace {

// read_user_since(previous) checked against a full read of the same storage: same state in
// every field and order (diff_states), same history labels; `incremental` says which way.
sg::git::user_read since_equals_full(const sg::git::storage_reader& reader,
                                     const sg::git::user_read& previous, bool incremental,
                                     std::size_t max_new = 512) {
    auto since = reader.read_user_since(previous, max_new);
    INFO(previous.state.user_id << ": " << (since ? "" : since.error().message));
    REQUIRE(since.has_value());
    const auto full = must_read(reader, previous.state.user_id);
    const auto drift = sg::v1::diff_states(full.state, since->state);
    for (const auto& d : drift) UNSCOPED_INFO(sg::v1::to_string(d));
    CHECK(drift.empty());
    CHECK(since->labels == full.labels);
    CHECK(since->state.diffs_fingerprint == full.state.diffs_fingerprint);
    CHECK(since->incremental == incremental);
    CHECK_FALSE(full.incremental);
    return std::move(*since);
}

}  // namespace

TEST_CASE("git reader: reading on from an earlier read equals a full read", "[git]") {
    temp_dir tmp;
    auto reader = must_open(tmp.path());
    reader.keep_open_repositories(4);
    for (const unsigned seed : {20261122u, 99u, 5u}) {
        const std::string user = "lin" + std::to_string(seed);
        INFO(user);
        std::mt19937 rng(seed);
        const auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
        std::int64_t now = 1795320983;
        // Mostly forward in time, often the same second, sometimes older than the parent.
        const auto t = [&] {
            const auto r = pick(6);
            now += r == 0 ? -5 : r < 3 ? 0 : 1;
            return now;
        };
        repo_builder b(tmp.path() + "/" + user);
        b.write(".gitignore", "x\n");
        b.commit("Initialize user storage", t());
        b.write("memory-blocks/student.md", "s0\n");
        b.commit("Initialize student block\n\nAuthor: system", t());
        auto prev = must_read(reader, user);
        const std::vector<std::string> labels = {"student", "journey", "progress", "goals"};
        int commits = 0;
        for (int step = 0; step < 40; ++step) {
            const auto burst = 1 + pick(3);  // several commits between two reads
            for (std::size_t k = 0; k < burst; ++k) {
                const auto what = pick(10);
                const auto file = "memory-blocks/" + labels[pick(labels.size())] + ".md";
                if (what == 0) {
                    b.remove(file);  // deleted (or already absent: an empty commit)
                } else if (what == 1) {
                    b.write("notes.txt", "not a block " + std::to_string(step) + "\n");
                } else if (what == 2) {  // two blocks in one commit
                    b.write(file, "both " + std::to_string(step) + "\n");
                    b.write("memory-blocks/" + labels[pick(labels.size())] + ".md",
                            "both too " + std::to_string(step) + "\r\n");
                } else if (what == 3 && fs::exists(b.dir() + "/" + file)) {
                    const auto p = b.dir() + "/" + file;
                    const bool exec =
                        (fs::status(p).permissions() & fs::perms::owner_exec) != fs::perms::none;
                    REQUIRE(::chmod(p.c_str(), exec ? 0644 : 0755) == 0);  // mode only
                } else if (what == 4) {
                    b.write(file, "back to s0\n");  // maybe the content of an older version
                } else {
                    b.write(file, "step " + std::to_string(step) + "." + std::to_string(k) + "\n");
                }
                b.commit("Step " + std::to_string(step) + "\n\nAuthor: agent:" + std::to_string(k),
                         t());
                ++commits;
            }
            if (pick(3) == 0) {
                write_file(b.dir() + "/pending_diffs/d" + std::to_string(step) + ".json",
                           "{\"id\": \"d" + std::to_string(step) + "\"}");
            }
            prev = since_equals_full(reader, prev, true);  // read on from the last read on
        }
        CHECK(commits >= 60);
        // No new commit, only pending diffs changed.
        write_file(b.dir() + "/pending_diffs/last.json", "{\"id\": \"last\"}");
        prev = since_equals_full(reader, prev, true);
    }
}

TEST_CASE("git reader: reading on falls back to a full read when it must", "[git]") {
    temp_dir tmp;
    const auto reader = must_open(tmp.path());
    repo_builder b(tmp.path() + "/u");
    std::int64_t t = 1795320983;
    b.write("memory-blocks/student.md", "A\n");
    const auto c1 = b.commit("One\n\nAuthor: user", t);
    const auto first = must_read(reader, "u");

    SECTION("a merge among the new commits") {
        b.git("checkout -q -b side");
        b.write("memory-blocks/journey.md", "J\n");
        b.commit("Side\n\nAuthor: user", t + 1);
        b.git("checkout -q master");
        b.write("memory-blocks/student.md", "B\n");
        b.commit("Two\n\nAuthor: user", t + 2);
        b.merge("side", "Merge\n\nAuthor: system", t + 3);
        const auto merged = since_equals_full(reader, first, false);
        // After the merge, a plain commit on top reads on again.
        b.write("memory-blocks/journey.md", "J2\n");
        b.commit("Three\n\nAuthor: user", t + 4);
        since_equals_full(reader, merged, true);
    }
    SECTION("a rewritten history") {
        b.write("memory-blocks/student.md", "B\n");
        b.commit("Two\n\nAuthor: user", t + 1);
        const auto second = must_read(reader, "u");
        b.git("reset -q --hard " + c1);
        b.write("memory-blocks/student.md", "C\n");
        b.commit("Other two\n\nAuthor: user", t + 2);
        since_equals_full(reader, second, false);
    }
    SECTION("more new commits than allowed") {
        for (int i = 0; i < 3; ++i) {
            b.write("memory-blocks/student.md", "v" + std::to_string(i) + "\n");
            b.commit("Next\n\nAuthor: user", t + 1 + i);
        }
        since_equals_full(reader, first, false, 2);
        since_equals_full(reader, first, true, 3);
    }
    SECTION("a wildcard or unsafe block name in the new commits") {
        b.write("memory-blocks/st*.md", "star\n");
        b.commit("Wildcard\n\nAuthor: user", t + 1);
        since_equals_full(reader, first, false);
        b.remove("memory-blocks/st*.md");
        b.write("memory-blocks/.hidden.md", "h\n");
        b.commit("Unsafe\n\nAuthor: user", t + 2);
        auto since = reader.read_user_since(must_read(reader, "u"));
        REQUIRE(since.has_value());
        CHECK_FALSE(since->incremental);
        CHECK(has_warning(*since, warning_kind::unsafe_label, "u/memory-blocks/.hidden.md"));
    }
    SECTION("a wildcard label only on a branch a merge discarded still matches later changes") {
        b.git("checkout -q -b side");
        b.write("memory-blocks/st*.md", "star\n");
        b.commit("Side\n\nAuthor: user", t + 1);
        b.git("checkout -q master");
        b.merge("side", "Merge, ours\n\nAuthor: system", t + 2, "-s ours");
        const auto merged = must_read(reader, "u");
        CHECK(std::count(merged.labels.begin(), merged.labels.end(), "st*") == 1);
        b.write("memory-blocks/student.md", "B\n");
        b.commit("Two\n\nAuthor: user", t + 3);
        const auto after = since_equals_full(reader, merged, false);
        // student.md matches the pattern: its two versions are versions of "st*" too
        CHECK(versions_of(after.state, "st*").size() == 2);
    }
    SECTION("an earlier read of another user, or of an empty repository") {
        repo_builder o(tmp.path() + "/v");
        o.write("memory-blocks/student.md", "other\n");
        o.commit("One\n\nAuthor: user", t);
        auto other = first;
        other.state.user_id = "v";
        since_equals_full(reader, other, false);
        repo_builder e(tmp.path() + "/e");
        const auto empty = must_read(reader, "e");
        e.write("memory-blocks/student.md", "first\n");
        e.commit("One\n\nAuthor: user", t);
        since_equals_full(reader, empty, false);
    }
}

TEST_CASE("git reader: a lazily opened reader waits for its directory", "[git]") {
    temp_dir tmp;
    const std::string dir = tmp.path() + "/later";
    sg::git::lazy_storage_reader lazy(dir);
    auto before = lazy.get();
    REQUIRE_FALSE(before.has_value());
    CHECK(before.error().kind == error_kind::not_found);
    fs::create_directories(dir);
    auto first = lazy.get();
    REQUIRE(first.has_value());
    auto again = lazy.get();
    REQUIRE(again.has_value());
    CHECK(*first == *again);  // opened once
    CHECK((*first)->data_dir() == fs::canonical(dir).string());
}
