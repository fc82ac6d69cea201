// UTF-8 code points and the Python character classes that str methods depend on.
//
// Python strings index by code point; ours are UTF-8 bytes. Bytes that are not valid UTF-8
// decode as U+DC80..U+DCFF (Python's "surrogateescape"), which no case mapping or class
// touches, so every byte string survives a round trip through these functions unchanged.
// Case mapping and letter classes cover ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic;
// other scripts are treated as uncased (their letters still count as alphabetic).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace flywheel::jinja::unicode {

struct Decoded {
  char32_t cp;
  size_t len;  // bytes consumed, at least 1
};

Decoded decode(std::string_view s, size_t i);
void append_utf8(std::string& out, char32_t cp);
std::string encode(char32_t cp);

bool is_ascii(std::string_view s);
size_t length(std::string_view s);
// The byte offset of every code point, followed by s.size(): offsets[i]..offsets[i+1] is the
// i-th code point.
std::vector<size_t> offsets(std::string_view s);

bool is_space(char32_t cp);      // str.isspace, and what str.split()/strip() remove
bool is_linebreak(char32_t cp);  // a str.splitlines() boundary
bool is_upper(char32_t cp);
bool is_lower(char32_t cp);
bool is_alpha(char32_t cp);
bool is_digit(char32_t cp);
bool is_word(char32_t cp);       // regex \w: letters, digits, underscore
bool is_printable(char32_t cp);  // what repr() leaves unescaped
char32_t to_upper(char32_t cp);
char32_t to_lower(char32_t cp);

}  // namespace flywheel::jinja::unicode
