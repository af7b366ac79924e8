// adapters/v1/render_internal: what the files behind render.hpp (render, render_history) share:
// the JSON answer helpers, the block lookup, and answer_or_500 with the Python exception it
// catches. Only those files include it; everyone else includes render.hpp.
#pragma once

#include <new>
#include <string>
#include <string_view>

#include "adapters/v1/model.hpp"
#include "adapters/v1/render.hpp"

namespace sg::v1::render_detail {

// From render.cpp.

rendered json_answer(unsigned status, std::string body);

rendered detail(unsigned status, std::string_view text_utf8);

// A path identifier as the Python str v1 sees (uvicorn unquotes with errors="replace").
std::string as_python_str(std::string_view bytes);

const block* find_block(const user_state& state, std::string_view label);

// A Python exception where v1 raises one (answer_or_500 turns it into FastAPI's 500).
struct python_raised {};

// Runs a renderer body the way FastAPI runs an endpoint: a Python exception modelled as
// python_raised, or running out of memory, becomes the plain 500 FastAPI answers with.
template <class F>
rendered answer_or_500(F&& body) {
    try {
        return body();
    } catch (const python_raised&) {
        return render_internal_error();
    } catch (const std::bad_alloc&) {
        return render_internal_error();
    }
}

}  // namespace sg::v1::render_detail
