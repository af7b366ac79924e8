// adapters/v1/model: what v1 storage holds for one user, as plain values. adapters/git fills it
// from the repositories, adapters/dolt writes it to and reads it back from Dolt, and
// adapters/v1/render turns it into v1's JSON answers. No I/O here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sg::v1 {

// One commit that touched memory-blocks/{label}.md, as v1's history endpoint lists it.
struct block_version {
    std::string sha;     // full 40-hex commit id
    std::string label;   // the file stem
    std::string source;  // the exact file bytes in that commit's tree (CRLF kept); "" if the
                         // commit deleted the file (then `deleted` is true)
    bool deleted = false;
    std::string message;               // the full commit message, footer included, byte for byte
    std::string author;                // the "Author:" footer value, or "unknown" without one
    std::int64_t commit_time = 0;      // committer time, seconds since the epoch (UTC)
    int commit_tz_offset_minutes = 0;  // committer time zone, as recorded in the commit
    // Position in git's order for this block's history, 0 = newest (what history lists first).
    // Several commits often share one second; this keeps their order exact.
    std::int64_t ordinal = 0;
    // What history shows as is_current, where the state says it (the v2 side stores it); unset:
    // as v1, the first entry history lists.
    std::optional<bool> is_current;
};

// One commit of the user's repository (every commit reachable from HEAD, not only those that
// touch a block), so that "the file at commit X" can be answered for any X, as v1 does.
struct commit {
    std::string sha;
    std::vector<std::string> parents;  // in the commit's parent order
    std::string message;               // full message, byte for byte
    std::string author;                // the "Author:" footer value, or "unknown"
    std::int64_t commit_time = 0;      // committer time, seconds since the epoch (UTC)
    int commit_tz_offset_minutes = 0;
    // Position in `git rev-list HEAD` order (0 = HEAD): a total order that reproduces git's
    // even when commits share one second.
    std::int64_t seq = 0;
};

// A block as it stands at HEAD.
struct block {
    std::string label;
    std::string source;  // exact bytes of memory-blocks/{label}.md at HEAD
    std::string commit;  // the newest commit that touched the file
};

// One file of pending_diffs/, kept whole: the JSON text as v1's agent wrote it, plus the fields
// the API shows, already extracted (times as v1 printed them: naive local ISO strings).
struct pending_diff {
    std::string id;
    std::string raw_json;  // the file's exact text
    std::string agent_id;
    std::string block_label;
    std::optional<std::string> field;
    std::string operation;  // append | replace | llm_diff | full_replace
    std::optional<std::string> current_value;
    std::string proposed_value;
    std::string reasoning;
    std::string confidence;  // low | medium | high
    std::string status;      // pending | approved | rejected | superseded | expired
    std::optional<std::string> source_query;
    std::string created_at;
    std::optional<std::string> reviewed_at;
    std::optional<std::string> applied_commit;
    bool operator==(const pending_diff&) const = default;
};

// Everything v1 storage says about one user.
struct user_state {
    std::string user_id;
    std::string head;                     // HEAD commit sha ("" for an empty repository)
    std::vector<commit> commits;          // every commit reachable from HEAD, by seq
    std::vector<block> blocks;            // at HEAD, sorted by label
    std::vector<block_version> versions;  // every version of every block (any order)
    std::vector<pending_diff> diffs;      // every file in pending_diffs/, sorted by id
    std::string diffs_fingerprint;        // hash over pending_diffs/ metadata: names, types,
                                          // sizes, mtimes, ctimes (adapters/git/pending_diffs)
};

}  // namespace sg::v1
