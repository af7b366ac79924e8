// proxy/mirror/mirror_apply: see the header.
#include "proxy/mirror/mirror_apply.hpp"

namespace sg::proxy {

std::optional<step_failure> apply_one_by_one(
    dolt::connection& conn, const git::storage_reader& reader, const dolt::user_rows& head_rows,
    std::span<const v1::commit* const> steps, const dolt::write_options& wopts,
    const std::function<void(const v1::commit&, const dolt::apply_stats&)>& after_each) {
    dolt::user_rows previous;
    for (std::size_t i = 0; i < steps.size(); ++i) {
        const v1::commit& c = *steps[i];
        const bool last = i + 1 == steps.size();
        std::optional<git::user_read> at;
        if (!last) {
            auto r = reader.read_user_at_commit(head_rows.user_id, c.sha);
            if (!r) {
                step_failure f;
                f.from = step_failure::source::git;
                f.git_kind = r.error().kind;
                f.message = std::string(git::name(r.error().kind)) + ": " + r.error().message;
                return f;
            }
            at.emplace(std::move(*r));
        }
        // Versions are the head's (same commit, same bytes): only older block texts are new.
        if (!last) previous = dolt::derive_rows(at->state, &head_rows);
        const dolt::user_rows& rows = last ? head_rows : previous;
        auto applied = dolt::apply_user(conn, rows, wopts, dolt::apply_options{!last});
        if (!applied) {
            step_failure f;
            f.from = step_failure::source::dolt;
            f.dolt_error = applied.error();
            f.message = applied.error().to_string();
            return f;
        }
        if (after_each) after_each(c, *applied);
    }
    return std::nullopt;
}

}  // namespace sg::proxy
