// Byte-level text helpers for verifiers. Model output is untrusted: any bytes, any length.
// Nothing here uses std::regex (libstdc++'s recursion overflows the stack on long inputs).
#pragma once

#include <string>
#include <string_view>

namespace flywheel::verifiers {

// `text` with every invalid UTF-8 sequence replaced by U+FFFD, so it can go into JSON.
std::string valid_utf8(std::string_view text);

// At most `max_bytes` of `text` (cut on a character boundary) with "…" appended when cut: for
// the details of a verdict, which must stay small whatever the response.
std::string clip_for_log(std::string_view text, size_t max_bytes = 200);

inline bool is_ascii_digit(char c) {
  return c >= '0' && c <= '9';
}
inline bool is_ascii_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
inline bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view trim(std::string_view text);
std::string to_lower_ascii(std::string_view text);

}  // namespace flywheel::verifiers
