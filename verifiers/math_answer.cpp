#include "verifiers/math_answer.h"

#include <array>
#include <vector>

#include "verifiers/text.h"

namespace flywheel::verifiers {
namespace {

// Index just past the group opened by text[open] == '{', or npos when it never closes.
// Escaped braces (\{ \}) and escaped backslashes do not count.
size_t skip_group(std::string_view text, size_t open) {
  int64_t depth = 0;
  for (size_t i = open; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\\') {
      ++i;  // the escaped character, whatever it is
    } else if (c == '{') {
      ++depth;
    } else if (c == '}' && --depth == 0) {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

bool starts_with_at(std::string_view text, size_t i, std::string_view what) {
  return text.substr(i, what.size()) == what;
}

// A command "\name" at text[i] that is not the prefix of a longer command name.
bool command_at(std::string_view text, size_t i, std::string_view name) {
  if (!starts_with_at(text, i, name)) return false;
  const size_t end = i + name.size();
  return end >= text.size() || !is_ascii_alpha(text[end]);
}

std::string replace_all(std::string text, std::string_view from, std::string_view to) {
  std::string out;
  size_t i = 0;
  while (true) {
    const size_t at = text.find(from, i);
    if (at == std::string::npos) break;
    out.append(text, i, at - i);
    out.append(to);
    i = at + from.size();
  }
  out.append(text, i, std::string::npos);
  return out;
}

// Removes every whole-word occurrence of the command `name` (e.g. "\left").
std::string remove_command(const std::string& text, std::string_view name) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (text[i] == '\\' && command_at(text, i, name)) {
      i += name.size();
    } else {
      out += text[i++];
    }
  }
  return out;
}

// "\name{X}" -> "X" for every occurrence whose group closes.
std::string unwrap(const std::string& text, std::string_view name) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (text[i] == '\\' && command_at(text, i, name)) {
      size_t j = i + name.size();
      while (j < text.size() && text[j] == ' ')
        ++j;
      const size_t end =
          j < text.size() && text[j] == '{' ? skip_group(text, j) : std::string::npos;
      if (end != std::string::npos) {
        out += unwrap(text.substr(j + 1, end - j - 2), name);
        i = end;
        continue;
      }
    }
    out += text[i++];
  }
  return out;
}

bool letters_only(std::string_view text) {
  bool any = false;
  for (const char c : text) {
    if (is_ascii_alpha(c)) {
      any = true;
    } else if (c != ' ' && c != '.') {
      return false;
    }
  }
  return any;
}

// Removes a unit written as a text group after the value: "5 \text{ cm}^2" -> "5 ".
std::string remove_unit_group(const std::string& text) {
  static constexpr std::array<std::string_view, 4> kGroups = {"\\text", "\\mbox", "\\mathrm",
                                                              "\\textrm"};
  std::string t(trim(text));
  for (const auto power : {"^2", "^3", "^{2}", "^{3}"}) {
    if (t.size() > 3 && t.ends_with(power)) {
      t.resize(t.size() - std::string_view(power).size());
      break;
    }
  }
  for (const auto name : kGroups) {
    const size_t at = t.rfind(name);
    if (at == std::string::npos || at == 0) continue;
    size_t j = at + name.size();
    while (j < t.size() && t[j] == ' ')
      ++j;
    if (j >= t.size() || t[j] != '{' || skip_group(t, j) != t.size()) continue;
    const std::string_view inside = std::string_view(t).substr(j + 1, t.size() - j - 2);
    const std::string_view before = trim(std::string_view(t).substr(0, at));
    if (letters_only(inside) && !before.empty() &&
        (is_ascii_digit(before.back()) || before.back() == '}' || before.back() == ')'))
      return std::string(before);
  }
  return text;
}

// Removes one trailing unit word after a number or a closed group: "5 cm" -> "5".
std::string remove_unit_word(const std::string& text) {
  static constexpr std::array<std::string_view, 40> kUnits = {
      "cm",      "mm",     "km",      "meters", "meter",   "metres",   "inches",  "inch",
      "feet",    "foot",   "ft",      "yards",  "miles",   "mph",      "hours",   "hour",
      "minutes", "minute", "seconds", "days",   "weeks",   "years",    "degrees", "degree",
      "cents",   "cent",   "dollars", "units",  "sq",      "square",   "ways",    "points",
      "pounds",  "grams",  "kg",      "liters", "gallons", "students", "people",  "digits"};
  std::string t(trim(text));
  for (const auto power : {"^2", "^3"})
    if (t.ends_with(power)) t.resize(t.size() - 2);
  size_t start = t.size();
  while (start > 0 && is_ascii_alpha(t[start - 1]))
    --start;
  if (start == 0 || start == t.size() || t[start - 1] == '\\') return text;
  const std::string word = to_lower_ascii(std::string_view(t).substr(start));
  bool unit = false;
  for (const auto u : kUnits)
    unit = unit || word == u;
  const std::string_view before = trim(std::string_view(t).substr(0, start));
  if (!unit || before.empty() || !(is_ascii_digit(before.back()) || before.back() == '}'))
    return text;
  return std::string(before);
}

// LaTeX's spacing commands (\! \, \; \: "\ ") and ties (~) removed; a row break (\\) is kept.
std::string remove_spacing(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '~') continue;
    if (text[i] == '\\' && i + 1 < text.size()) {
      const char next = text[i + 1];
      if (next == '!' || next == ',' || next == ';' || next == ':' || next == ' ') {
        ++i;
        continue;
      }
      if (next == '\\') {
        out += "\\\\";
        ++i;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

// Whitespace removed, except one space between a command and a letter ("\cot x").
std::string remove_spaces(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (!is_ascii_space(text[i])) {
      out += text[i];
      continue;
    }
    size_t next = i;
    while (next < text.size() && is_ascii_space(text[next]))
      ++next;
    size_t k = out.size();
    while (k > 0 && is_ascii_alpha(out[k - 1]))
      --k;
    const bool after_command = k > 0 && k < out.size() && out[k - 1] == '\\';
    if (after_command && next < text.size() && is_ascii_alpha(text[next])) out += ' ';
    i = next - 1;
  }
  return out;
}

std::string fix_shorthand(const std::string& text);

// One argument of a shorthand command: "{...}" kept as is, or a single character braced.
std::string shorthand_argument(const std::string& text, size_t* i) {
  if (*i >= text.size()) return "{}";
  if (text[*i] == '{') {
    const size_t end = skip_group(text, *i);
    if (end != std::string::npos) {
      std::string group = "{" + fix_shorthand(text.substr(*i + 1, end - *i - 2)) + "}";
      *i = end;
      return group;
    }
  }
  if (text[*i] == '\\') {  // a command as the argument: "\frac\pi2"
    size_t j = *i + 1;
    while (j < text.size() && is_ascii_alpha(text[j]))
      ++j;
    std::string group = "{" + text.substr(*i, j - *i) + "}";
    *i = j;
    return group;
  }
  return std::string("{") + text[(*i)++] + "}";
}

// \frac12 -> \frac{1}{2}, \frac1{2}, \frac{1}2 alike; \sqrt3 -> \sqrt{3}.
std::string fix_shorthand(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (text[i] == '\\' && command_at(text, i, "\\frac")) {
      i += 5;
      out += "\\frac";
      out += shorthand_argument(text, &i);
      out += shorthand_argument(text, &i);
    } else if (text[i] == '\\' && command_at(text, i, "\\sqrt")) {
      i += 5;
      out += "\\sqrt";
      if (i < text.size() && text[i] == '[') continue;  // \sqrt[n]{x}
      out += shorthand_argument(text, &i);
    } else {
      out += text[i++];
    }
  }
  return out;
}

// "10,080" / "-1,234.5": a lone number with thousands separators.
bool thousands_number(std::string_view t) {
  size_t i = t.starts_with('-') ? 1 : 0;
  size_t lead = 0;
  while (i < t.size() && is_ascii_digit(t[i]))
    ++i, ++lead;
  if (lead == 0 || lead > 3 || i == t.size() || t[i] != ',') return false;
  while (i < t.size() && t[i] == ',') {
    for (int k = 1; k <= 3; ++k)
      if (i + k >= t.size() || !is_ascii_digit(t[i + k])) return false;
    i += 4;
  }
  if (i < t.size() && t[i] == '.') {
    ++i;
    if (i == t.size()) return false;
    while (i < t.size() && is_ascii_digit(t[i]))
      ++i;
  }
  return i == t.size();
}

// "x=5" -> "5", "x\in[1,2]" -> "[1,2]": a left side of at most two characters names the
// answer, as in Hendrycks' normalization; longer equations stay equations.
std::string drop_short_left_side(const std::string& t) {
  const size_t eq = t.find('=');
  if (eq != std::string::npos && t.find('=', eq + 1) == std::string::npos && eq <= 2 && eq > 0)
    return t.substr(eq + 1);
  const size_t in = t.find("\\in");
  if (in != std::string::npos && in > 0 && in <= 2 && command_at(t, in, "\\in"))
    return t.substr(in + 3);
  return t;
}

std::string after_phrase(std::string_view response, size_t at) {
  size_t i = at;
  while (i < response.size() && (response[i] == ' ' || response[i] == ':'))
    ++i;
  if (i < response.size() && response[i] == '$') {
    size_t j = i;
    while (j < response.size() && response[j] == '$')
      ++j;
    const size_t close = response.find('$', j);
    if (close != std::string_view::npos) return std::string(response.substr(j, close - j));
  }
  size_t end = response.find('\n', i);
  if (end == std::string_view::npos) end = response.size();
  const size_t sentence = response.substr(0, end).find(". ", i);
  if (sentence != std::string_view::npos) end = sentence;
  std::string out(trim(response.substr(i, end - i)));
  while (!out.empty() && out.back() == '.')
    out.pop_back();
  return out;
}

}  // namespace

std::optional<std::string> last_boxed(std::string_view text) {
  size_t at = std::string_view::npos;
  size_t name = 0;
  for (const std::string_view cmd : {std::string_view("\\boxed"), std::string_view("\\fbox")}) {
    const size_t found = text.rfind(cmd);
    if (found != std::string_view::npos && (at == std::string_view::npos || found > at))
      at = found, name = cmd.size();
  }
  if (at == std::string_view::npos) return std::nullopt;
  size_t i = at + name;
  if (i < text.size() && text[i] == ' ') {
    while (i < text.size() && text[i] == ' ')
      ++i;
    if (i < text.size() && text[i] != '{') {  // "\boxed 5$"
      size_t end = i;
      while (end < text.size() && text[end] != '$' && text[end] != '\n')
        ++end;
      return std::string(trim(text.substr(i, end - i)));
    }
  }
  if (i >= text.size() || text[i] != '{') return std::nullopt;
  const size_t end = skip_group(text, i);
  if (end == std::string_view::npos) return std::nullopt;
  return std::string(text.substr(i + 1, end - i - 2));
}

std::optional<ExtractedAnswer> extract_math_answer(std::string_view response) {
  if (response.find("\\boxed") != std::string_view::npos ||
      response.find("\\fbox") != std::string_view::npos) {
    if (auto boxed = last_boxed(response)) return ExtractedAnswer{*boxed, "boxed"};
    return std::nullopt;
  }
  static constexpr std::string_view kMinerva = "Final Answer: The final answer is";
  static constexpr std::string_view kHope = ". I hope it is correct";
  const size_t minerva = response.rfind(kMinerva);
  if (minerva != std::string_view::npos) {
    const size_t start = minerva + kMinerva.size();
    const size_t hope = response.find(kHope, start);
    if (hope != std::string_view::npos)
      return ExtractedAnswer{std::string(trim(response.substr(start, hope - start))), "minerva"};
  }
  const std::string lowered = to_lower_ascii(response);
  size_t best = std::string::npos, length = 0;
  for (const std::string_view phrase :
       {std::string_view("final answer is"), std::string_view("the answer is")}) {
    const size_t at = lowered.rfind(phrase);
    if (at != std::string::npos && (best == std::string::npos || at > best))
      best = at, length = phrase.size();
  }
  if (best != std::string::npos) {
    std::string answer = after_phrase(response, best + length);
    if (!answer.empty()) return ExtractedAnswer{answer, "answer_is"};
  }
  const std::string_view whole = trim(response);
  if (!whole.empty() && whole.size() <= 64 && whole.find('\n') == std::string_view::npos)
    return ExtractedAnswer{std::string(whole), "whole"};
  return std::nullopt;
}

std::string normalize_math_answer(std::string_view answer) {
  std::string t(answer);
  for (const char* c : {"\n", "\r", "\t"})
    t = replace_all(t, c, " ");
  t = remove_spacing(t);
  t = replace_all(t, "{,}", "");  // LaTeX's thousands separator: 13{,}535
  for (const char* frac : {"\\dfrac", "\\tfrac", "\\cfrac"})
    t = replace_all(t, frac, "\\frac");
  for (const char* null_delimiter : {"\\left.", "\\right."})
    t = replace_all(t, null_delimiter, "");
  for (const char* sizing : {"\\left", "\\right", "\\bigl", "\\bigr", "\\Bigl", "\\Bigr", "\\big",
                             "\\Big", "\\displaystyle"})
    t = remove_command(t, sizing);
  for (const char* degrees : {"^{\\circ}", "^\\circ", "\\circ", "\xC2\xB0"})
    t = replace_all(t, degrees, "");
  for (const char* s : {"\\$", "$", "\\%", "%"})
    t = replace_all(t, s, "");
  for (const char* s : {"\\text{ and }", "\\text{and}", "\\text{ or }", "\\text{or}"})
    t = replace_all(t, s, ",");
  t = remove_unit_group(t);
  for (const char* wrapper : {"\\text", "\\textbf", "\\textit", "\\textrm", "\\textnormal",
                              "\\mathrm", "\\mathbf", "\\mathit", "\\mbox", "\\boxed", "\\fbox"})
    t = unwrap(t, wrapper);
  t = remove_unit_word(t);
  t = remove_spaces(t);
  while (!t.empty() && t.back() == '.')
    t.pop_back();
  t = drop_short_left_side(t);
  t = fix_shorthand(t);
  if (thousands_number(t)) t = replace_all(t, ",", "");
  return t;
}

}  // namespace flywheel::verifiers
