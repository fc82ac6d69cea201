#include "trainer/eval/style_control.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace flywheel {
namespace {

// Python's \s on ASCII (str patterns also match \x1c-\x1f).
bool is_space(char c) {
  return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f');
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool at_line_start(std::string_view s, size_t i) {
  return i == 0 || s[i - 1] == '\n';
}

// add_markdown_info.py's remove_pattern with ```([^`]*)```: collect every block's contents
// (re.findall, non-overlapping, left to right), then delete each collected string everywhere
// it occurs, one after another (str.replace), fences staying behind.
std::string remove_code_blocks(std::string_view s) {
  std::vector<std::string> blocks;
  for (size_t i = 0; i + 3 <= s.size();) {
    if (s.substr(i, 3) == "```") {
      const size_t end = s.find('`', i + 3);
      if (end != std::string_view::npos && s.substr(end, 3) == "```") {
        blocks.emplace_back(s.substr(i + 3, end - i - 3));
        i = end + 3;
        continue;
      }
    }
    ++i;
  }
  std::string out(s);
  for (const std::string& block : blocks) {
    if (block.empty()) continue;  // str.replace("", "") changes nothing
    std::string next;
    size_t from = 0;
    for (size_t at; (at = out.find(block, from)) != std::string::npos; from = at + block.size())
      next.append(out, from, at - from);
    next.append(out, from, std::string::npos);
    out.swap(next);
  }
  return out;
}

// Matches of ^#{n}\s (MULTILINE): a match ends at most at a line start, so lines are
// independent.
int count_headers(std::string_view s, int n) {
  int count = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (!at_line_start(s, i)) continue;
    size_t j = i;
    while (j < s.size() && j - i < static_cast<size_t>(n) && s[j] == '#')
      ++j;
    if (j - i == static_cast<size_t>(n) && j < s.size() && is_space(s[j])) ++count;
  }
  return count;
}

// re.findall of ^\s*MARKER\s (MULTILINE), MARKER being \d+\. or [-*+]: \s* may cross newlines,
// so matches are found left to right and the search resumes where one ends.
template <typename Marker>
int count_list_items(std::string_view s, Marker marker) {
  int count = 0;
  for (size_t i = 0; i < s.size();) {
    if (at_line_start(s, i)) {
      size_t j = i;
      while (j < s.size() && is_space(s[j]))
        ++j;
      const size_t after = marker(s, j);
      if (after != 0 && after < s.size() && is_space(s[after])) {
        ++count;
        i = after + 1;
        continue;
      }
    }
    ++i;
  }
  return count;
}

// re.findall of DD[^D\n]+DD for a delimiter character D (* or _).
int count_bold(std::string_view s, char d) {
  int count = 0;
  for (size_t i = 0; i + 1 < s.size();) {
    if (s[i] == d && s[i + 1] == d) {
      size_t j = i + 2;
      while (j < s.size() && s[j] != d && s[j] != '\n')
        ++j;
      if (j > i + 2 && j + 1 < s.size() && s[j] == d && s[j + 1] == d) {
        ++count;
        i = j + 2;
        continue;
      }
    }
    ++i;
  }
  return count;
}

}  // namespace

StyleCounts measure_style(std::string_view answer) {
  StyleCounts out;
  for (char c : answer)
    out.length += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  const std::string text = remove_code_blocks(answer);
  for (int n = 1; n <= 6; ++n)
    out.headers += count_headers(text, n);
  // Each marker returns the index just past itself, or 0 when there is none at j.
  out.lists += count_list_items(text, [](std::string_view s, size_t j) -> size_t {
    size_t k = j;
    while (k < s.size() && is_digit(s[k]))
      ++k;
    return k > j && k < s.size() && s[k] == '.' ? k + 1 : 0;
  });
  out.lists += count_list_items(text, [](std::string_view s, size_t j) -> size_t {
    return j < s.size() && (s[j] == '-' || s[j] == '*' || s[j] == '+') ? j + 1 : 0;
  });
  out.bold += count_bold(text, '*') + count_bold(text, '_');
  return out;
}

BattleStyle measure_battle_style(std::string_view answer_a, std::string_view answer_b) {
  return {measure_style(answer_a), measure_style(answer_b)};
}

StyleMatrix style_matrix(const BattleLog& log) {
  if (!log.first_without_style().empty())
    throw UserError("style control needs style features on every battle; " +
                    log.first_without_style() + " has none");
  const auto& battles = log.battles();
  const size_t n = battles.size();
  StyleMatrix out;
  out.x.assign(n * kStyleFeatures, 0.0);
  for (int k = 0; k < kStyleFeatures; ++k) {
    auto side = [k](const StyleCounts& c) {
      const double v[kStyleFeatures] = {c.length, c.headers, c.lists, c.bold};
      return v[k];
    };
    std::vector<double> v(n);
    double total = 0, mean = 0;
    for (size_t r = 0; r < n; ++r) {
      const BattleStyle& s = log.styles()[battles[r].style];
      const double a = side(s.a), b = side(s.b);
      v[r] = (a - b) / (a + b + 1);
      total += battles[r].weight;
      mean += battles[r].weight * v[r];
    }
    const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    out.varies[k] = n > 0 && *lo != *hi;
    if (!out.varies[k]) continue;
    mean /= total;
    double var = 0;
    for (size_t r = 0; r < n; ++r)
      var += battles[r].weight * (v[r] - mean) * (v[r] - mean);
    const double sd = std::sqrt(var / total);
    for (size_t r = 0; r < n; ++r)
      out.x[r * kStyleFeatures + k] = (v[r] - mean) / sd;
  }
  return out;
}

}  // namespace flywheel
