#include "verifiers/arithmetic.h"

#include <cctype>

namespace flywheel::verifiers {
namespace {

bool is_digit(char c) {
  return std::isdigit(static_cast<unsigned char>(c)) != 0;
}

// Reads "[-]digits" starting at text[i] (which must start one), normalised: no leading zeros,
// no "-0".
std::string read_integer(const std::string& text, size_t i, size_t* end) {
  const bool negative = text[i] == '-';
  size_t j = negative ? i + 1 : i;
  while (j + 1 < text.size() && text[j] == '0' && is_digit(text[j + 1]))
    ++j;
  std::string digits;
  while (j < text.size() && is_digit(text[j]))
    digits += text[j++];
  *end = j;
  return (negative && digits != "0" ? "-" : "") + digits;
}

bool starts_integer(const std::string& text, size_t i) {
  return is_digit(text[i]) || (text[i] == '-' && i + 1 < text.size() && is_digit(text[i + 1]));
}

std::optional<std::string> first_integer(const std::string& text) {
  for (size_t i = 0; i < text.size(); ++i) {
    size_t end = 0;
    if (starts_integer(text, i)) return read_integer(text, i, &end);
  }
  return std::nullopt;
}

// The integer `text` is, allowing surrounding spaces; nullopt for anything else.
std::optional<std::string> whole_integer(const std::string& text) {
  const auto begin = text.find_first_not_of(' ');
  if (begin == std::string::npos || !starts_integer(text, begin)) return std::nullopt;
  size_t end = 0;
  auto value = read_integer(text, begin, &end);
  if (text.find_first_not_of(' ', end) != std::string::npos) return std::nullopt;
  return value;
}

}  // namespace

std::optional<double> arithmetic_score(const std::string& response, const std::string& truth) {
  const auto want = whole_integer(truth);
  if (!want) return std::nullopt;
  return first_integer(response) == want ? 1.0 : 0.0;
}

}  // namespace flywheel::verifiers
