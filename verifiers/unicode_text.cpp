#include "verifiers/unicode_text.h"

#include <unicode/uchar.h>
#include <unicode/utf8.h>

namespace flywheel::verifiers {

std::u32string decode_utf8(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const auto length = static_cast<int32_t>(text.size());
  for (int32_t i = 0; i < length;) {
    UChar32 c = 0;
    const int32_t start = i;
    U8_NEXT(s, i, length, c);
    if (c < 0) {
      out.push_back(U'\uFFFD');
      i = start + 1;  // one byte at a time, as in the replacement of valid_utf8
    } else {
      out.push_back(static_cast<char32_t>(c));
    }
  }
  return out;
}

std::string encode_utf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char32_t c : text) {
    uint8_t buf[4];
    int32_t n = 0;
    UBool error = false;
    U8_APPEND(buf, n, 4, static_cast<UChar32>(c), error);
    if (error) {
      out += "\xEF\xBF\xBD";
    } else {
      out.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
    }
  }
  return out;
}

bool py_isspace(char32_t c) {
  if (c == U' ' || (c >= U'\t' && c <= U'\r') || (c >= 0x1C && c <= 0x1F)) return true;
  if (c < 0x80) return false;
  const auto uc = static_cast<UChar32>(c);
  if (u_charType(uc) == U_SPACE_SEPARATOR) return true;
  const auto bidi = u_charDirection(uc);
  return bidi == U_BLOCK_SEPARATOR || bidi == U_SEGMENT_SEPARATOR || bidi == U_WHITE_SPACE_NEUTRAL;
}

bool py_isword(char32_t c) {
  if (c < 0x80) {
    return (c >= U'a' && c <= U'z') || (c >= U'A' && c <= U'Z') || (c >= U'0' && c <= U'9') ||
           c == U'_';
  }
  switch (u_charType(static_cast<UChar32>(c))) {
    case U_UPPERCASE_LETTER:
    case U_LOWERCASE_LETTER:
    case U_TITLECASE_LETTER:
    case U_MODIFIER_LETTER:
    case U_OTHER_LETTER:
    case U_DECIMAL_DIGIT_NUMBER:
    case U_LETTER_NUMBER:
    case U_OTHER_NUMBER:
      return true;
    default:
      return false;
  }
}

std::u32string py_strip(std::u32string_view text) {
  size_t a = 0, b = text.size();
  while (a < b && py_isspace(text[a]))
    ++a;
  while (b > a && py_isspace(text[b - 1]))
    --b;
  return std::u32string(text.substr(a, b - a));
}

std::u32string py_lower(std::u32string_view text) {
  std::u32string out(text);
  for (char32_t& c : out)
    c = static_cast<char32_t>(u_tolower(static_cast<UChar32>(c)));
  return out;
}

std::vector<std::u32string> py_split(std::u32string_view text) {
  std::vector<std::u32string> words;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && py_isspace(text[i]))
      ++i;
    const size_t start = i;
    while (i < text.size() && !py_isspace(text[i]))
      ++i;
    if (i > start) words.emplace_back(text.substr(start, i - start));
  }
  return words;
}

namespace {

// (has upper, has lower, has title) over the cased characters of `text`.
void case_summary(std::u32string_view text, bool* upper, bool* lower, bool* title) {
  *upper = *lower = *title = false;
  for (const char32_t c : text) {
    const auto uc = static_cast<UChar32>(c);
    if (u_istitle(uc)) {
      *title = true;
    } else if (u_isUUppercase(uc)) {
      *upper = true;
    } else if (u_isULowercase(uc)) {
      *lower = true;
    }
  }
}

}  // namespace

bool py_isupper(std::u32string_view text) {
  bool upper, lower, title;
  case_summary(text, &upper, &lower, &title);
  return upper && !lower && !title;
}

bool py_islower(std::u32string_view text) {
  bool upper, lower, title;
  case_summary(text, &upper, &lower, &title);
  return lower && !upper && !title;
}

size_t count_word_runs(std::u32string_view text) {
  size_t runs = 0;
  bool in_word = false;
  for (const char32_t c : text) {
    const bool w = py_isword(c);
    if (w && !in_word) ++runs;
    in_word = w;
  }
  return runs;
}

}  // namespace flywheel::verifiers
