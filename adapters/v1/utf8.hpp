// adapters/v1/utf8: UTF-8 the way CPython's codec sees it (v1 is a Python service), and the
// printable form of an identifier for logs and reports. Pure.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sg::v1 {

// What next_code_point returns for an invalid sequence.
inline constexpr char32_t no_char = 0xFFFFFFFF;

// Decodes one code point at `i` of `s` (i < s.size()). On success returns it and advances `i`; on
// an invalid sequence returns no_char and advances `i` past the maximal invalid subpart (what
// CPython replaces with one U+FFFD). `allow_surrogates` accepts ED A0..BF (WTF-8), which the YAML
// reader uses internally for lone surrogates coming from escapes.
char32_t next_code_point(std::string_view s, std::size_t& i, bool allow_surrogates = false);

// Appends `c` encoded as UTF-8 (1 to 4 bytes). A lone surrogate is written as its 3 bytes (WTF-8),
// as Python keeps one in a str until it must encode it.
void append_code_point(std::string& out, char32_t c);

// True when bytes.decode("utf-8") would succeed (no overlongs, surrogates or values > U+10FFFF).
bool is_valid_utf8(std::string_view bytes);

// bytes.decode("utf-8", errors="replace"): each maximal invalid subpart becomes U+FFFD.
std::string utf8_decode_replace(std::string_view bytes);

// An identifier as it may be printed in a log line, a terminal or a report: printable text stays
// as it is; a backslash, a double quote, a control character (C0, DEL, C1), a line or paragraph
// separator, a bidirectional override, and every byte of an invalid sequence become escapes
// (\\, \", \n, \t, \r, \xNN, \u202e), so the printed form is one line, shows every byte, and
// can neither forge a log field nor reorder the text around it.
std::string escaped(std::string_view id);

}  // namespace sg::v1
