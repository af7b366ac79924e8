// adapters/git/libgit2: library set-up and the read-only repository opener.
#include "adapters/git/libgit2.hpp"

#include <git2/sys/odb_backend.h>  // git_odb_backend::free, to drop a backend not added
#include <git2/sys/repository.h>   // git_repository_set_odb

#include <mutex>

namespace sg::git::lg {

void ensure_init() {
    static std::once_flag once;
    std::call_once(once, [] {
        git_libgit2_init();
        git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
    });
}

std::string last_error(std::string_view what) {
    const git_error* e = git_error_last();
    std::string out(what);
    out += ": ";
    out += (e != nullptr && e->message != nullptr) ? e->message : "unknown libgit2 error";
    return out;
}

std::string hex(const git_oid& id) {
    char buf[GIT_OID_HEXSZ + 1];
    git_oid_tostr(buf, sizeof buf, &id);
    return std::string(buf, GIT_OID_HEXSZ);
}

namespace {

// Adds a backend to `odb`, which then owns it; frees it when adding fails.
bool add_backend(git_odb* odb, git_odb_backend* backend, int priority) {
    if (git_odb_add_backend(odb, backend, priority) == 0) return true;
    backend->free(backend);
    return false;
}

}  // namespace

result<repository_ptr> open_repository(const std::string& git_dir) {
    ensure_init();
    git_repository* raw = nullptr;
    if (git_repository_open_ext(&raw, git_dir.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) !=
        0) {
        return make_error(error_kind::repository, last_error("open repository"));
    }
    repository_ptr repo(raw);

    // libgit2 canonicalizes the path it opened; anything but the directory we checked means a
    // gitdir file or symlink redirected it.
    std::string expected = git_dir;
    if (!expected.ends_with('/')) expected += '/';
    // A "commondir" file (linked worktrees) would send ref lookups elsewhere too.
    const char* path = git_repository_path(repo.get());
    const char* common = git_repository_commondir(repo.get());
    if (path == nullptr || expected != path || common == nullptr || expected != common) {
        return make_error(error_kind::unsafe_path,
                          std::string("repository resolves outside its user directory: ") +
                              (path != nullptr ? path : "?"));
    }

    // Our own object database without alternates (an alternates file may name any directory).
    // Priorities as libgit2's default database: packs are tried before loose objects.
    const std::string objects = expected + "objects";
    git_odb* odb_raw = nullptr;
    if (git_odb_new(&odb_raw) != 0) {
        return make_error(error_kind::repository, last_error("object database"));
    }
    odb_ptr odb(odb_raw);
    git_odb_backend* pack = nullptr;
    git_odb_backend* loose = nullptr;
    if (git_odb_backend_pack(&pack, objects.c_str()) != 0 || !add_backend(odb.get(), pack, 2) ||
        git_odb_backend_loose(&loose, objects.c_str(), -1, 0, 0, 0) != 0 ||
        !add_backend(odb.get(), loose, 1)) {
        return make_error(error_kind::repository, last_error("object database"));
    }
    if (git_repository_set_odb(repo.get(), odb.get()) != 0) {
        return make_error(error_kind::repository, last_error("object database"));
    }
    return repo;
}

}  // namespace sg::git::lg
