// adapters/dolt/values: pure conversions between the v1 model's values and the column values of
// the Dolt tables: UTC DATETIME text, v1's naive ISO times, the history summary line, parent
// lists. No I/O; shared by the writer, the reader and the tests.
#pragma once

#include <chrono>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sg::dolt {

// DATETIME's range, as seconds since the epoch: 1000-01-01 00:00:00 .. 9999-12-31 23:59:59 UTC.
inline constexpr std::int64_t min_datetime_epoch = -30610224000;
inline constexpr std::int64_t max_datetime_epoch = 253402300799;

// "YYYY-MM-DD HH:MM:SS" of a UTC instant, as DATETIME takes it; nullopt outside DATETIME's range.
std::optional<std::string> utc_datetime(std::int64_t epoch_seconds);

// Inverse of utc_datetime: "YYYY-MM-DD HH:MM:SS", optionally followed by a fraction (".ffffff",
// as DATETIME(6) prints it), which is dropped. nullopt when s is not such a time.
std::optional<std::int64_t> parse_utc_datetime(std::string_view s);

// v1's naive local ISO time as Python's isoformat() prints it ("2026-11-22T04:16:24.125199", or
// "2026-11-22T04:16:24" when the microseconds are zero) as a DATETIME(6) value
// ("2026-11-22 04:16:24.125199"). nullopt for anything else (an offset, a date alone, garbage):
// the exact text is stored beside it anyway.
std::optional<std::string> iso_to_datetime6(std::string_view s);

// A DATETIME(6) value as the tables give it back ("YYYY-MM-DD HH:MM:SS", with or without a
// fraction of up to 6 digits) in one spelling: "YYYY-MM-DD HH:MM:SS.ffffff". nullopt otherwise.
std::optional<std::string> normal_datetime6(std::string_view s);

// Python's isoformat() of that naive time: "YYYY-MM-DDTHH:MM:SS", then ".ffffff" unless the
// microseconds are 0 (the inverse of iso_to_datetime6 on what isoformat() prints).
std::optional<std::string> datetime6_to_iso(std::string_view s);

// A time point as a DATETIME(6) literal in UTC: "YYYY-MM-DD HH:MM:SS.ffffff".
std::string datetime6(std::chrono::system_clock::time_point tp);

// The history summary of a commit message: its first line (up to the first '\n', as GitPython's
// `summary`), cut to at most max_chars characters (UTF-8 code points, VARCHAR(500) counts
// those), never inside a multi-byte sequence.
std::string_view summary_line(std::string_view message, std::size_t max_chars = 500);

// Parent shas in order, separated by single spaces ("" for a root commit), and back.
std::string join_parents(const std::vector<std::string>& parents);
std::vector<std::string> split_parents(std::string_view joined);

}  // namespace sg::dolt
