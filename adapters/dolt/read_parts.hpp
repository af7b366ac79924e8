// adapters/dolt/read_parts: which of one user's rows a read endpoint renders from, so that a
// read fetches only those. Pure.
#pragma once

#include "adapters/v1/routes.hpp"

#include <optional>
#include <string>

namespace sg::dolt {

// The parts of one user's rows a read needs: each read endpoint renders from a few of them.
struct read_parts {
    bool commits = false;
    bool blocks = false;
    bool block_texts = true;  // false: blocks without their text columns (left empty)
    bool versions = false;
    bool version_texts = true;  // false: versions without their text columns
    bool diffs = false;
    bool audit = false;  // also the audit copies (source, full_message, raw_json, ...)
    std::optional<std::string> label;  // blocks and versions of this label only

    static read_parts everything() {
        read_parts p;
        p.commits = p.blocks = p.versions = p.diffs = p.audit = true;
        return p;
    }
};

// The parts of the user's state v1::render_read needs for `route` (a read of the block API): the
// user's row always, then only the tables the endpoint renders from, the route's label only
// where the answer is about one block (a superset: v1::render_read still matches labels exactly).
dolt::read_parts parts_for(const v1::route& route);

}  // namespace sg::dolt
