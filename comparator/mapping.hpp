// comparator/mapping: turns a v2 answer of another JSON shape into v1's before it is compared:
// per-endpoint steps that move (rename) or drop fields. Paths are JSON Pointers in which a "*"
// segment stands for every element of an array (or every member of an object); a move's source
// and destination share everything up to their last "*", so elements move within themselves.
// Pure: no I/O.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace sg::comparator {

struct map_step {
    enum class op { move, drop };
    op what = op::move;
    std::string from;  // JSON Pointer with "*" segments
    std::string to;    // move only; "" is the whole document (or the whole element, under "*")
};

// "" when the step can be applied; else what is wrong with it (for the config's problems):
// a path that is not a JSON Pointer, a move whose two paths differ up to their last "*", a drop
// of the whole document.
std::string check_step(const map_step& step);

// Applies `steps` in order. A step whose source is absent changes nothing (the comparison then
// shows the field as missing); a destination whose parents are absent gets them as objects; a
// destination under a value that is neither object nor array is left alone. Steps that fail
// check_step are skipped.
void apply_mapping(nlohmann::json& doc, const std::vector<map_step>& steps);

}  // namespace sg::comparator
