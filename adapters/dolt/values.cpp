// adapters/dolt/values: pure conversions between model values and column values.
#include "adapters/dolt/values.hpp"

#include <chrono>
#include <cstdio>

namespace sg::dolt {

namespace {

bool digits(std::string_view s, std::size_t at, std::size_t n, int& value) {
    if (at + n > s.size()) {
        return false;
    }
    value = 0;
    for (std::size_t i = at; i < at + n; ++i) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        value = value * 10 + (s[i] - '0');
    }
    return true;
}

struct civil {
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
};

// "YYYY-MM-DD?HH:MM:SS" with `sep` between date and time; checks the calendar.
std::optional<civil> parse_civil(std::string_view s, char sep) {
    civil c;
    if (s.size() < 19 || s[4] != '-' || s[7] != '-' || s[10] != sep || s[13] != ':' ||
        s[16] != ':') {
        return std::nullopt;
    }
    if (!digits(s, 0, 4, c.year) || !digits(s, 5, 2, c.month) || !digits(s, 8, 2, c.day) ||
        !digits(s, 11, 2, c.hour) || !digits(s, 14, 2, c.minute) || !digits(s, 17, 2, c.second)) {
        return std::nullopt;
    }
    const std::chrono::year_month_day ymd{std::chrono::year{c.year},
                                          std::chrono::month{static_cast<unsigned>(c.month)},
                                          std::chrono::day{static_cast<unsigned>(c.day)}};
    if (!ymd.ok() || c.hour > 23 || c.minute > 59 || c.second > 59 || c.year < 1000) {
        return std::nullopt;
    }
    return c;
}

// A fraction ".d{1,6}" at s[19..]; returns its six-digit form, nullopt when malformed.
std::optional<std::string> fraction(std::string_view s) {
    if (s.size() == 19) {
        return std::string("000000");
    }
    if (s[19] != '.' || s.size() < 21 || s.size() > 26) {
        return std::nullopt;
    }
    std::string f(s.substr(20));
    for (char ch : f) {
        if (ch < '0' || ch > '9') {
            return std::nullopt;
        }
    }
    f.resize(6, '0');
    return f;
}

}  // namespace

std::optional<std::string> utc_datetime(std::int64_t epoch_seconds) {
    if (epoch_seconds < min_datetime_epoch || epoch_seconds > max_datetime_epoch) {
        return std::nullopt;
    }
    using namespace std::chrono;
    const sys_seconds tp{seconds{epoch_seconds}};
    const sys_days day = floor<days>(tp);
    const year_month_day ymd{day};
    const hh_mm_ss hms{tp - day};
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02d:%02d:%02d", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()));
    return std::string(buf);
}

std::optional<std::int64_t> parse_utc_datetime(std::string_view s) {
    const auto c = parse_civil(s, ' ');
    if (!c || !fraction(s)) {
        return std::nullopt;
    }
    using namespace std::chrono;
    const sys_days day{year_month_day{year{c->year}, month{static_cast<unsigned>(c->month)},
                                      std::chrono::day{static_cast<unsigned>(c->day)}}};
    return day.time_since_epoch().count() * std::int64_t{86400} + c->hour * 3600 + c->minute * 60 +
           c->second;
}

std::optional<std::string> iso_to_datetime6(std::string_view s) {
    const auto c = parse_civil(s, 'T');
    if (!c) {
        return std::nullopt;
    }
    const auto f = fraction(s);
    if (!f) {
        return std::nullopt;
    }
    std::string out(s.substr(0, 19));
    out[10] = ' ';
    return out + "." + *f;
}

std::optional<std::string> normal_datetime6(std::string_view s) {
    const auto c = parse_civil(s, ' ');
    if (!c) return std::nullopt;
    const auto f = fraction(s);
    if (!f) return std::nullopt;
    return std::string(s.substr(0, 19)) + "." + *f;
}

std::optional<std::string> datetime6_to_iso(std::string_view s) {
    auto n = normal_datetime6(s);
    if (!n) return std::nullopt;
    (*n)[10] = 'T';
    if (n->compare(20, 6, "000000") == 0) n->resize(19);
    return n;
}

std::string_view summary_line(std::string_view message, std::size_t max_chars) {
    std::string_view line = message.substr(0, message.find('\n'));
    std::size_t chars = 0;
    for (std::size_t i = 0; i < line.size(); ++i) {
        const auto byte = static_cast<unsigned char>(line[i]);
        if ((byte & 0xC0) != 0x80) {  // not a continuation byte: a character starts here
            if (chars == max_chars) {
                return line.substr(0, i);
            }
            ++chars;
        }
    }
    return line;
}

std::string join_parents(const std::vector<std::string>& parents) {
    std::string out;
    for (const auto& p : parents) {
        if (!out.empty()) {
            out.push_back(' ');
        }
        out += p;
    }
    return out;
}

std::vector<std::string> split_parents(std::string_view joined) {
    std::vector<std::string> out;
    while (!joined.empty()) {
        const std::size_t sp = joined.find(' ');
        out.emplace_back(joined.substr(0, sp));
        if (sp == std::string_view::npos) {
            break;
        }
        joined.remove_prefix(sp + 1);
    }
    return out;
}

std::string datetime6(std::chrono::system_clock::time_point tp) {
    using namespace std::chrono;
    const auto us = floor<microseconds>(tp);
    const auto day = floor<days>(us);
    const year_month_day ymd{day};
    const hh_mm_ss hms{us - day};
    char buf[40];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02d:%02d:%02d.%06d",
                  static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                  static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
                  static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()),
                  static_cast<int>(hms.subseconds().count()));
    return buf;
}

}  // namespace sg::dolt
