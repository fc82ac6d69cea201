#include "verifiers/text.h"

namespace flywheel::verifiers {
namespace {

// Length of the valid UTF-8 sequence at text[i], or 0 when the bytes there are not one.
size_t utf8_sequence(std::string_view text, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(text[i + k]); };
  const auto cont = [&](size_t k) { return i + k < text.size() && (b(k) & 0xC0) == 0x80; };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;   // overlong
    if (c == 0xED && b(1) >= 0xA0) return 0;  // surrogates
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;   // overlong
    if (c == 0xF4 && b(1) >= 0x90) return 0;  // past U+10FFFF
    return 4;
  }
  return 0;
}

}  // namespace

std::string valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8_sequence(text, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string clip_for_log(std::string_view text, size_t max_bytes) {
  std::string valid = valid_utf8(text.substr(0, max_bytes + 4));
  if (text.size() <= max_bytes && valid.size() == text.size()) return valid;
  size_t cut = std::min(max_bytes, valid.size());
  while (cut > 0 && (static_cast<unsigned char>(valid[cut]) & 0xC0) == 0x80)
    --cut;
  if (cut >= text.size()) return valid;
  return valid.substr(0, cut) + "\xE2\x80\xA6";
}

std::string_view trim(std::string_view text) {
  size_t a = 0, b = text.size();
  while (a < b && is_ascii_space(text[a]))
    ++a;
  while (b > a && is_ascii_space(text[b - 1]))
    --b;
  return text.substr(a, b - a);
}

std::string to_lower_ascii(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

}  // namespace flywheel::verifiers
