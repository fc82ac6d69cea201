#include "verifiers/ifeval.h"

#include <algorithm>
#include <functional>
#include <map>

#include "trainer/core/error.h"
#include "verifiers/deadline.h"
#include "verifiers/ifeval_text.h"
#include "verifiers/text.h"
#include "verifiers/unicode_text.h"

namespace flywheel::verifiers {
namespace {

using U32 = std::u32string;
using U32View = std::u32string_view;

// What one check reads: the variant as code points, and the same as UTF-8 for the byte-level
// libraries.
struct Text {
  U32 u;
  std::string utf8;
};

struct Kwargs {
  const std::string& id;
  const nlohmann::json& json;

  const nlohmann::json& at(const char* key) const {
    if (!json.is_object() || !json.contains(key) || json[key].is_null())
      throw UserError("IFEval " + id + ": kwargs need \"" + key + "\"");
    return json[key];
  }
  int64_t integer(const char* key) const {
    const auto& v = at(key);
    if (!v.is_number_integer())
      throw UserError("IFEval " + id + ": \"" + key + "\" must be an integer");
    return v.get<int64_t>();
  }
  std::string string(const char* key) const {
    const auto& v = at(key);
    if (!v.is_string()) throw UserError("IFEval " + id + ": \"" + key + "\" must be a string");
    return v.get<std::string>();
  }
  std::vector<std::string> strings(const char* key) const {
    const auto& v = at(key);
    if (!v.is_array()) throw UserError("IFEval " + id + ": \"" + key + "\" must be a list");
    std::vector<std::string> out;
    for (const auto& s : v) {
      if (!s.is_string()) throw UserError("IFEval " + id + ": \"" + key + "\" must hold strings");
      out.push_back(s.get<std::string>());
    }
    return out;
  }
  // "less than" -> count < n; "at least" -> count >= n.
  std::function<bool(int64_t)> relation(const char* key, int64_t n) const {
    const std::string r = string(key);
    if (r == "less than") return [n](int64_t c) { return c < n; };
    if (r == "at least") return [n](int64_t c) { return c >= n; };
    throw UserError("IFEval " + id + ": \"" + key +
                    "\" must be \"less than\" or \"at least\", got \"" + r + "\"");
  }
};

U32 u32(std::string_view s) {
  return decode_utf8(s);
}

bool starts_with(U32View s, U32View prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Non-overlapping occurrences of `needle` in `hay`, left to right.
int64_t count_occurrences(U32View hay, U32View needle) {
  if (needle.empty()) return static_cast<int64_t>(hay.size()) + 1;  // re.findall("") semantics
  int64_t n = 0;
  for (size_t at = hay.find(needle); at != U32View::npos; at = hay.find(needle, at + needle.size()))
    ++n;
  return n;
}

// Whether re's \b holds before and after hay[at, at + length).
bool whole_word_at(U32View hay, size_t at, size_t length) {
  const auto word = [&](size_t i) { return i < hay.size() && py_isword(hay[i]); };
  const size_t end = at + length;
  const bool left = (at > 0 && word(at - 1)) != word(at);
  const bool right = word(end - 1) != word(end);
  return left && right;
}

// Python's s.split(sep).
std::vector<U32> split_on(U32View s, U32View sep) {
  std::vector<U32> parts;
  size_t start = 0;
  for (size_t at = s.find(sep); at != U32View::npos; at = s.find(sep, start)) {
    parts.emplace_back(s.substr(start, at - start));
    start = at + sep.size();
  }
  parts.emplace_back(s.substr(start));
  return parts;
}

bool blank(U32View s) {
  return std::all_of(s.begin(), s.end(), py_isspace);
}

// --- the checks -----------------------------------------------------------------------------

bool keywords_existence(const Text& t, const Kwargs& k) {
  const U32 lower = py_lower(t.u);
  for (const auto& kw : k.strings("keywords"))
    if (lower.find(py_lower(u32(kw))) == U32::npos) return false;
  return true;
}

bool keywords_frequency(const Text& t, const Kwargs& k) {
  const U32 keyword = py_lower(py_strip(u32(k.string("keyword"))));
  return k.relation("relation", k.integer("frequency"))(count_occurrences(py_lower(t.u), keyword));
}

bool forbidden_words(const Text& t, const Kwargs& k) {
  const U32 lower = py_lower(t.u);
  for (const auto& word : k.strings("forbidden_words")) {
    const U32 w = py_lower(u32(word));
    if (w.empty()) continue;
    for (size_t at = lower.find(w); at != U32::npos; at = lower.find(w, at + 1))
      if (whole_word_at(lower, at, w.size())) return false;
  }
  return true;
}

bool letter_frequency(const Text& t, const Kwargs& k) {
  const U32 letter = py_lower(py_strip(u32(k.string("letter"))));
  if (letter.size() != 1) throw UserError("IFEval " + k.id + ": \"letter\" must be one character");
  const U32 lower = py_lower(t.u);
  const auto count = std::count(lower.begin(), lower.end(), letter[0]);
  return k.relation("let_relation", k.integer("let_frequency"))(count);
}

bool response_language(const Text& t, const Kwargs& k) {
  const auto detected = detect_language(t.utf8);
  return !detected || *detected == k.string("language");
}

bool number_sentences(const Text& t, const Kwargs& k) {
  return k.relation("relation",
                    k.integer("num_sentences"))(static_cast<int64_t>(count_sentences(t.utf8)));
}

bool number_words(const Text& t, const Kwargs& k) {
  return k.relation("relation", k.integer("num_words"))(static_cast<int64_t>(count_word_runs(t.u)));
}

// re.split(r"\s?\*\*\*\s?", s): each separator is "***" with at most one whitespace character
// taken on either side, found leftmost first.
std::vector<U32> split_paragraph_rules(U32View s) {
  std::vector<U32> parts;
  size_t start = 0, i = 0;
  while (i < s.size()) {
    size_t match = U32View::npos, end = 0;
    if (py_isspace(s[i]) && starts_with(s.substr(i + 1), U"***")) {
      match = i;
      end = i + 4;
    } else if (starts_with(s.substr(i), U"***")) {
      match = i;
      end = i + 3;
    }
    if (match == U32View::npos) {
      ++i;
      continue;
    }
    if (end < s.size() && py_isspace(s[end])) ++end;
    parts.emplace_back(s.substr(start, match - start));
    start = i = end;
  }
  parts.emplace_back(s.substr(start));
  return parts;
}

bool number_paragraphs(const Text& t, const Kwargs& k) {
  const auto parts = split_paragraph_rules(t.u);
  int64_t count = static_cast<int64_t>(parts.size());
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!blank(parts[i])) continue;
    if (i == 0 || i + 1 == parts.size()) {
      --count;
    } else {
      return false;
    }
  }
  return count == k.integer("num_paragraphs");
}

bool nth_paragraph_first_word(const Text& t, const Kwargs& k) {
  const auto parts = split_on(t.u, U"\n\n");
  int64_t count = static_cast<int64_t>(parts.size());
  for (const auto& p : parts)
    if (blank(p)) --count;
  const int64_t nth = k.integer("nth_paragraph");
  const U32 want = py_lower(u32(k.string("first_word")));
  const int64_t num = k.integer("num_paragraphs");
  if (nth > count || nth < 1) return false;
  const U32 paragraph = py_strip(parts[static_cast<size_t>(nth - 1)]);
  if (paragraph.empty()) return false;
  U32 word = py_strip(py_split(paragraph)[0]);
  size_t lead = 0;
  while (lead < word.size() && word[lead] == U'\'')
    ++lead;
  word.erase(0, lead);
  lead = 0;
  while (lead < word.size() && word[lead] == U'"')
    ++lead;
  word.erase(0, lead);
  U32 first;
  for (const char32_t c : word) {
    if (c == U'.' || c == U',' || c == U'?' || c == U'!' || c == U'\'' || c == U'"') break;
    first += py_lower(U32View(&c, 1));
  }
  return count == num && first == want;
}

// The first index from `from` on holding `close` or a line break (s.size() when none): where
// a one-line match that began before `from` ends or fails.
size_t scan_line_to(U32View s, size_t from, char32_t close) {
  size_t j = from;
  while (j < s.size() && s[j] != close && s[j] != U'\n')
    ++j;
  return j;
}

bool number_placeholders(const Text& t, const Kwargs& k) {
  const U32& s = t.u;
  int64_t count = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != U'[') continue;
    const size_t j = scan_line_to(s, i + 1, U']');
    if (j < s.size() && s[j] == U']') ++count;
    // On a match the scan resumes after ']'; on a line break or the end every '[' before j
    // fails the same way, so either way it goes on from j.
    i = j;
  }
  return count >= k.integer("num_placeholders");
}

// re.search(pattern, s) for "p" "." \s? ... sequences: `parts` are literal pieces with an
// optional whitespace character allowed after each but the last.
bool find_dotted(U32View s, const std::vector<U32View>& parts) {
  for (size_t start = 0; start < s.size(); ++start) {
    size_t i = start;
    bool ok = true;
    for (size_t p = 0; p < parts.size() && ok; ++p) {
      if (!starts_with(s.substr(i), parts[p])) {
        ok = false;
        break;
      }
      i += parts[p].size();
      if (p + 1 < parts.size() && i < s.size() && py_isspace(s[i]) &&
          !starts_with(s.substr(i), parts[p + 1]))
        ++i;
    }
    if (ok) return true;
  }
  return false;
}

bool postscript(const Text& t, const Kwargs& k) {
  const U32 lower = py_lower(t.u);
  const std::string marker = k.string("postscript_marker");
  const U32 m = py_strip(u32(marker));
  if (m == U"P.P.S") return find_dotted(lower, {U"p.", U"p.", U"s"});
  if (m == U"P.S.") return find_dotted(lower, {U"p.", U"s."});
  return lower.find(py_lower(m)) != U32::npos;
}

// findall(r"^\s*<c>...$", s, MULTILINE) for bullet markers: from each line start, whitespace
// (line breaks too) is skipped; `marker` must follow (for '*', and then a character that is
// not '*'); the match runs to the end of that line.
int64_t count_line_items(U32View s, char32_t marker) {
  int64_t count = 0;
  size_t i = 0;
  while (i <= s.size()) {
    const bool line_start = i == 0 || (i <= s.size() && s[i - 1] == U'\n');
    if (!line_start || i == s.size()) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && py_isspace(s[j]))
      ++j;
    bool match = j < s.size() && s[j] == marker;
    size_t end = j + 1;
    if (match && marker == U'*') {
      match = end < s.size() && s[end] != U'*';
      ++end;  // [^*] may be a line break: the match then runs on to the next line's end
    }
    if (!match) {
      // Every line start up to j skips to the same j and fails the same way.
      i = std::max(i + 1, j);
      continue;
    }
    while (end < s.size() && s[end] != U'\n')
      ++end;
    ++count;
    i = end;  // resumes at the line break; the next line starts after it
  }
  return count;
}

bool number_bullet_lists(const Text& t, const Kwargs& k) {
  return count_line_items(t.u, U'*') + count_line_items(t.u, U'-') == k.integer("num_bullets");
}

bool constrained_response(const Text& t, const Kwargs&) {
  const U32 s = py_strip(t.u);
  for (const U32View option : {U32View(U"My answer is yes."), U32View(U"My answer is no."),
                               U32View(U"My answer is maybe.")})
    if (s.find(option) != U32::npos) return true;
  return false;
}

U32 strip_chars(U32View s, char32_t c) {
  size_t a = 0, b = s.size();
  while (a < b && s[a] == c)
    ++a;
  while (b > a && s[b - 1] == c)
    --b;
  return U32(s.substr(a, b - a));
}

bool highlighted_sections(const Text& t, const Kwargs& k) {
  const U32& s = t.u;
  int64_t count = 0;
  // r"\*[^\n\*]*\*"
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != U'*') continue;
    const size_t j = scan_line_to(s, i + 1, U'*');
    if (j < s.size() && s[j] == U'*') {
      if (!py_strip(strip_chars(U32View(s).substr(i, j - i + 1), U'*')).empty()) ++count;
      i = j;
    }
  }
  // r"\*\*[^\n\*]*\*\*"
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] != U'*' || s[i + 1] != U'*') continue;
    const size_t j = scan_line_to(s, i + 2, U'*');
    if (j + 1 < s.size() && s[j] == U'*' && s[j + 1] == U'*') {
      if (!py_strip(U32View(s).substr(i + 2, j - i - 2)).empty()) ++count;
      i = j + 1;
    }
  }
  return count >= k.integer("num_highlights");
}

bool multiple_sections(const Text& t, const Kwargs& k) {
  const U32 splitter = py_strip(u32(k.string("section_spliter")));
  const U32& s = t.u;
  const auto digit = [](char32_t c) { return c >= U'0' && c <= U'9'; };
  int64_t count = 0;
  for (size_t i = 0; i < s.size();) {
    size_t j = i;
    if (py_isspace(s[j]) && starts_with(U32View(s).substr(j + 1), splitter)) ++j;
    if (splitter.empty() || !starts_with(U32View(s).substr(j), splitter)) {
      ++i;
      continue;
    }
    j += splitter.size();
    if (j < s.size() && py_isspace(s[j]) && j + 1 < s.size() && digit(s[j + 1])) ++j;
    if (j >= s.size() || !digit(s[j])) {
      ++i;
      continue;
    }
    while (j < s.size() && digit(s[j]))
      ++j;
    if (j < s.size() && py_isspace(s[j])) ++j;
    ++count;
    i = j;
  }
  return count >= k.integer("num_sections");
}

bool json_format(const Text& t, const Kwargs&) {
  std::string s = encode_utf8(py_strip(t.u));
  for (const char* prefix : {"```json", "```Json", "```JSON", "```"})
    if (s.starts_with(prefix)) s.erase(0, std::string_view(prefix).size());
  if (s.ends_with("```")) s.resize(s.size() - 3);
  s = encode_utf8(py_strip(u32(s)));
  return nlohmann::json::accept(s);
}

bool title(const Text& t, const Kwargs&) {
  const U32& s = t.u;
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] != U'<' || s[i + 1] != U'<') continue;
    size_t line_end = s.find(U'\n', i);
    if (line_end == U32::npos) line_end = s.size();
    // Greedy: the last ">>" on the line, with at least one character after "<<".
    const size_t last = line_end >= 2 ? s.rfind(U">>", line_end - 2) : U32::npos;
    if (last == U32::npos || last < i + 3) {
      i = line_end;  // no "<<" later on this line can match either
      continue;
    }
    const size_t close = last;
    U32View inner = U32View(s).substr(i + 2, close - i - 2);
    size_t a = 0;
    while (a < inner.size() && inner[a] == U'<')
      ++a;
    size_t b = inner.size();
    while (b > a && inner[b - 1] == U'>')
      --b;
    if (!py_strip(inner.substr(a, b - a)).empty()) return true;
    i = close + 1;
  }
  return false;
}

bool two_responses(const Text& t, const Kwargs&) {
  const auto parts = split_on(t.u, U"******");
  std::vector<U32> kept;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (blank(parts[i])) {
      if (i != 0 && i + 1 != parts.size()) return false;
      continue;
    }
    kept.push_back(parts[i]);
  }
  return kept.size() == 2 && py_strip(kept[0]) != py_strip(kept[1]);
}

bool repeat_prompt(const Text& t, const Kwargs& k) {
  return starts_with(py_lower(py_strip(t.u)),
                     py_lower(py_strip(u32(k.string("prompt_to_repeat")))));
}

bool end_checker(const Text& t, const Kwargs& k) {
  const U32 s = py_lower(strip_chars(py_strip(t.u), U'"'));
  const U32 phrase = py_lower(py_strip(u32(k.string("end_phrase"))));
  return s.size() >= phrase.size() && s.substr(s.size() - phrase.size()) == phrase;
}

bool quotation(const Text& t, const Kwargs&) {
  const U32 s = py_strip(t.u);
  return s.size() > 1 && s.front() == U'"' && s.back() == U'"';
}

bool no_comma(const Text& t, const Kwargs&) {
  return t.u.find(U',') == U32::npos;
}

bool english_capital(const Text& t, const Kwargs&) {
  if (!py_isupper(t.u)) return false;
  const auto lang = detect_language(t.utf8);
  return !lang || *lang == "en";
}

bool english_lowercase(const Text& t, const Kwargs&) {
  if (!py_islower(t.u)) return false;
  const auto lang = detect_language(t.utf8);
  return !lang || *lang == "en";
}

bool capital_word_frequency(const Text& t, const Kwargs& k) {
  return k.relation("capital_relation", k.integer("capital_frequency"))(
      static_cast<int64_t>(count_capital_words(t.utf8)));
}

using Check = bool (*)(const Text&, const Kwargs&);

const std::map<std::string, Check>& checks() {
  static const std::map<std::string, Check> kChecks = {
      {"change_case:capital_word_frequency", capital_word_frequency},
      {"change_case:english_capital", english_capital},
      {"change_case:english_lowercase", english_lowercase},
      {"combination:repeat_prompt", repeat_prompt},
      {"combination:two_responses", two_responses},
      {"detectable_content:number_placeholders", number_placeholders},
      {"detectable_content:postscript", postscript},
      {"detectable_format:constrained_response", constrained_response},
      {"detectable_format:json_format", json_format},
      {"detectable_format:multiple_sections", multiple_sections},
      {"detectable_format:number_bullet_lists", number_bullet_lists},
      {"detectable_format:number_highlighted_sections", highlighted_sections},
      {"detectable_format:title", title},
      {"keywords:existence", keywords_existence},
      {"keywords:forbidden_words", forbidden_words},
      {"keywords:frequency", keywords_frequency},
      {"keywords:letter_frequency", letter_frequency},
      {"language:response_language", response_language},
      {"length_constraints:nth_paragraph_first_word", nth_paragraph_first_word},
      {"length_constraints:number_paragraphs", number_paragraphs},
      {"length_constraints:number_sentences", number_sentences},
      {"length_constraints:number_words", number_words},
      {"punctuation:no_comma", no_comma},
      {"startend:end_checker", end_checker},
      {"startend:quotation", quotation},
  };
  return kChecks;
}

Check find_check(const std::string& id) {
  const auto it = checks().find(id);
  if (it == checks().end()) throw UserError("unknown IFEval instruction '" + id + "'");
  return it->second;
}

// A variant is judged only when it is not blank.
bool follows_variant(Check check, const Kwargs& k, const U32& variant) {
  check_deadline();
  if (blank(variant)) return false;
  return check(Text{variant, encode_utf8(variant)}, k);
}

std::vector<U32> loose_variants(const U32& response) {
  const auto lines = split_on(response, U"\n");
  const auto join = [&](size_t from, size_t to) {
    U32 out;
    for (size_t i = from; i < to; ++i) {
      if (i > from) out += U'\n';
      out += lines[i];
    }
    return py_strip(out);
  };
  const U32 first = join(1, lines.size());
  const U32 last = join(0, lines.size() - 1);
  const U32 both = lines.size() >= 2 ? join(1, lines.size() - 1) : U32();
  const auto no_stars = [](U32 s) {
    std::erase(s, U'*');
    return s;
  };
  return {response, no_stars(response), first,          last,
          both,     no_stars(first),    no_stars(last), no_stars(both)};
}

}  // namespace

bool ifeval_follows(const std::string& id, const nlohmann::json& kwargs,
                    std::string_view response) {
  const Check check = find_check(id);
  const U32 u = decode_utf8(response);
  return follows_variant(check, Kwargs{id, kwargs}, u);
}

IfevalResult ifeval_evaluate(const std::vector<std::string>& ids,
                             const std::vector<nlohmann::json>& kwargs, std::string_view response) {
  if (ids.size() != kwargs.size())
    throw UserError("IFEval: instruction_id_list and kwargs differ in length");
  const U32 u = decode_utf8(response);
  const auto variants = loose_variants(u);
  IfevalResult result;
  for (size_t i = 0; i < ids.size(); ++i) {
    const Check check = find_check(ids[i]);
    const Kwargs k{ids[i], kwargs[i]};
    result.strict.push_back(follows_variant(check, k, u));
    bool loose = false;
    for (const auto& v : variants)
      loose = loose || follows_variant(check, k, v);
    result.loose.push_back(loose);
  }
  return result;
}

const std::vector<std::string>& ifeval_instruction_ids() {
  static const std::vector<std::string> kIds = [] {
    std::vector<std::string> ids;
    for (const auto& [id, check] : checks())
      ids.push_back(id);
    return ids;
  }();
  return kIds;
}

Verdict check_ifeval(const VerifyInput& input) {
  Verdict v;
  // The instructions are the row's own fields, or (RLVR rows) a JSON object in ground_truth.
  nlohmann::json from_truth;
  if (!(input.fields.is_object() && input.fields.contains("instruction_id_list")) &&
      !input.ground_truth.empty()) {
    from_truth = nlohmann::json::parse(input.ground_truth, nullptr, /*allow_exceptions=*/false);
  }
  const auto& f = from_truth.is_object() ? from_truth : input.fields;
  if (!f.is_object() || !f.contains("instruction_id_list") || !f.contains("kwargs") ||
      !f["instruction_id_list"].is_array() || !f["kwargs"].is_array()) {
    v.details["reason"] = "the row has no instruction_id_list and kwargs lists";
    return v;
  }
  std::vector<std::string> ids;
  for (const auto& id : f["instruction_id_list"]) {
    if (!id.is_string()) {
      v.details["reason"] = "instruction_id_list must hold strings";
      return v;
    }
    ids.push_back(id.get<std::string>());
  }
  std::vector<nlohmann::json> kwargs(f["kwargs"].begin(), f["kwargs"].end());
  IfevalResult r;
  try {
    r = ifeval_evaluate(ids, kwargs, input.response);
  } catch (const UserError& e) {
    // Bad instructions: the row, not the response, is wrong.
    v.details["reason"] = valid_utf8(e.what());
    return v;
  }
  const auto satisfied = std::count(r.strict.begin(), r.strict.end(), true);
  v.correct = satisfied == static_cast<int64_t>(r.strict.size());
  v.details["strict"] = r.strict;
  v.details["loose"] = r.loose;
  v.details["fraction"] =
      r.strict.empty() ? 1.0
                       : static_cast<double>(satisfied) / static_cast<double>(r.strict.size());
  return v;
}

}  // namespace flywheel::verifiers
