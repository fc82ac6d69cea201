// Unicode-aware text operations with Python's semantics, for the IFEval checkers (which are
// defined by what Python's str methods and `re` do): code points from UTF-8 (invalid bytes read
// as U+FFFD, never an error), Python's whitespace for strip/split, Python's \w for word runs,
// simple lower-casing, and str.isupper / str.islower.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace flywheel::verifiers {

// The code points of `text` (invalid UTF-8 bytes become U+FFFD one byte each).
std::u32string decode_utf8(std::string_view text);
std::string encode_utf8(std::u32string_view text);

bool py_isspace(char32_t c);  // str.isspace: Zs, and the bidi classes B, S, WS
bool py_isword(char32_t c);   // re's \w: letters, numbers (Nd, Nl, No), '_'

std::u32string py_strip(std::u32string_view text);  // str.strip()
std::u32string py_lower(std::u32string_view text);  // per code point, simple case mapping
std::vector<std::u32string> py_split(std::u32string_view text);  // str.split()
// str.isupper / str.islower: some cased character, and none of the opposite case (nor titlecase).
bool py_isupper(std::u32string_view text);
bool py_islower(std::u32string_view text);

// len(re.findall(r"\w+", text)): IFEval's word count.
size_t count_word_runs(std::u32string_view text);

}  // namespace flywheel::verifiers
