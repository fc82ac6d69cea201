// Python's str methods and repr() over UTF-8 strings, counting in code points as Python does.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace flywheel::jinja::pystr {

// `chars` null: strip whitespace, as str.strip() with no argument.
std::string strip(std::string_view s, const std::string* chars, bool left, bool right);
// `sep` null: split on runs of whitespace, dropping empty pieces. `sep` must not be empty.
// maxsplit < 0: no limit.
std::vector<std::string> split(std::string_view s, const std::string* sep, int64_t maxsplit);
std::vector<std::string> rsplit(std::string_view s, const std::string* sep, int64_t maxsplit);
std::vector<std::string> splitlines(std::string_view s, bool keepends);
// count < 0: replace every occurrence.
std::string replace(std::string_view s, std::string_view old, std::string_view with, int64_t count);
// The code point index of the first (last, with `reverse`) occurrence, or -1.
int64_t find(std::string_view s, std::string_view sub, bool reverse);
int64_t count(std::string_view s, std::string_view sub);

std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string swapcase(std::string_view s);
std::string capitalize(std::string_view s);  // first character upper, the rest lower
std::string title(std::string_view s);       // str.title: a letter after a non-letter is upper
// str.center / ljust / rjust: align < 0 left-justifies, 0 centers, > 0 right-justifies.
std::string pad(std::string_view s, int64_t width, std::string_view fill, int align);

std::string float_repr(double d);      // repr(float): shortest round-trip, "1.0", "1e+16"
std::string repr(std::string_view s);  // repr(str): quoted, escaped

}  // namespace flywheel::jinja::pystr
