// adapters/dolt/read_parts: route -> the rows its answer is rendered from.
#include "adapters/dolt/read_parts.hpp"

#include "adapters/v1/utf8.hpp"

namespace sg::dolt {

read_parts parts_for(const v1::route& route) {
    using v1::endpoint;
    read_parts p;
    // v1 reads the label as a str (invalid UTF-8 replaced); the tables hold valid UTF-8.
    const std::string label = v1::utf8_decode_replace(route.label);
    switch (route.ep) {
        case endpoint::list_blocks:
            p.blocks = true;
            p.block_texts = false;
            p.diffs = true;
            break;
        case endpoint::diff_counts:
        case endpoint::list_diffs: p.diffs = true; break;
        case endpoint::get_block:
            p.blocks = true;
            p.diffs = true;
            p.label = label;
            break;
        case endpoint::block_history:
            p.blocks = true;
            p.block_texts = false;
            p.versions = true;
            p.version_texts = false;
            p.label = label;
            break;
        case endpoint::get_version:
            p.commits = true;
            p.versions = true;
            p.label = label;
            break;
        case endpoint::user_exists: break;
        default: p = read_parts::everything(); break;
    }
    return p;
}

}  // namespace sg::dolt
