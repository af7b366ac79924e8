// adapters/v1/utf8: see the header.
#include "adapters/v1/utf8.hpp"

#include <cstdio>

namespace sg::v1 {

char32_t next_code_point(std::string_view s, std::size_t& i, bool allow_surrogates) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
        ++i;
        return b0;
    }
    int need = 0;
    char32_t cp = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 1;
        cp = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 2;
        cp = b0 & 0x0F;
        if (b0 == 0xE0) lo = 0xA0;
        if (b0 == 0xED && !allow_surrogates) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 3;
        cp = b0 & 0x07;
        if (b0 == 0xF0) lo = 0x90;
        if (b0 == 0xF4) hi = 0x8F;
    } else {
        ++i;
        return no_char;
    }
    std::size_t j = i + 1;
    for (int k = 0; k < need; ++k, ++j) {
        if (j >= s.size()) {
            i = j;
            return no_char;
        }
        const auto b = static_cast<unsigned char>(s[j]);
        const unsigned char l = k == 0 ? lo : 0x80;
        const unsigned char h = k == 0 ? hi : 0xBF;
        if (b < l || b > h) {
            i = j;
            return no_char;
        }
        cp = (cp << 6) | (b & 0x3F);
    }
    i = j;
    return cp;
}

bool is_valid_utf8(std::string_view bytes) {
    for (std::size_t i = 0; i < bytes.size();) {
        if (next_code_point(bytes, i) == no_char) return false;
    }
    return true;
}

std::string utf8_decode_replace(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size());
    for (std::size_t i = 0; i < bytes.size();) {
        const std::size_t start = i;
        const char32_t cp = next_code_point(bytes, i);
        if (cp == no_char) {
            out += "\xEF\xBF\xBD";
        } else {
            out.append(bytes.substr(start, i - start));
        }
    }
    return out;
}

namespace {

bool must_escape(char32_t c) {
    return c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f) || c == 0x2028 || c == 0x2029 ||
           (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) || c == 0x200e ||
           c == 0x200f || c == 0x061c;
}

// \xNN below 0x100, \uNNNN above.
void append_escape(std::string& out, unsigned value) {
    char buf[16];
    if (value < 0x100) {
        std::snprintf(buf, sizeof buf, "\\x%02x", value);
    } else {
        std::snprintf(buf, sizeof buf, "\\u%04x", value);
    }
    out += buf;
}

}  // namespace

std::string escaped(std::string_view id) {
    std::string out;
    out.reserve(id.size());
    for (std::size_t i = 0; i < id.size();) {
        const std::size_t start = i;
        const char32_t cp = next_code_point(id, i);
        if (cp == no_char) {
            for (std::size_t j = start; j < i; ++j) {
                append_escape(out, static_cast<unsigned char>(id[j]));
            }
        } else if (cp == '\\' || cp == '"') {
            out += '\\';
            out += static_cast<char>(cp);
        } else if (cp == '\n') {
            out += "\\n";
        } else if (cp == '\t') {
            out += "\\t";
        } else if (cp == '\r') {
            out += "\\r";
        } else if (must_escape(cp)) {
            append_escape(out, static_cast<unsigned>(cp));
        } else {
            out.append(id.substr(start, i - start));
        }
    }
    return out;
}

void append_code_point(std::string& out, char32_t c) {
    if (c < 0x80) {
        out += static_cast<char>(c);
    } else if (c < 0x800) {
        out += static_cast<char>(0xC0 | (c >> 6));
        out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
        out += static_cast<char>(0xE0 | (c >> 12));
        out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (c >> 18));
        out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (c & 0x3F));
    }
}

}  // namespace sg::v1
