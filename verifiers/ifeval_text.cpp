#include "verifiers/ifeval_text.h"

#include <cld2/public/compact_lang_det.h>
#include <cld2/public/encodings.h>

#include <algorithm>
#include <map>

#include "verifiers/text.h"
#include "verifiers/unicode_text.h"

namespace flywheel::verifiers {
namespace {

bool is_closing_punct(char32_t c) {
  return c == U',' || c == U';' || c == U'@' || c == U'#' || c == U'$' || c == U'%' || c == U'&' ||
         c == U'?' || c == U'!' || c == U'*' || c == U'(' || c == U')' || c == U'[' || c == U']' ||
         c == U'{' || c == U'}' || c == U'<' || c == U'>' || c == U'"' || c == U'`' || c == U':' ||
         c == U'\u201C' || c == U'\u201D' || c == U'\u00AB' || c == U'\u00BB';
}

bool ends_with_ci(const std::u32string& s, std::u32string_view suffix) {
  if (s.size() < suffix.size()) return false;
  return py_lower(std::u32string_view(s).substr(s.size() - suffix.size())) == suffix;
}

// Splits one whitespace-delimited piece the way the Treebank rules would, appending tokens.
void split_piece(std::u32string piece, bool sentence_final, std::vector<std::u32string>* out) {
  // Punctuation that always stands alone (":" and "," only before a non-digit, as NLTK).
  std::vector<std::u32string> parts;
  std::u32string current;
  for (size_t i = 0; i < piece.size(); ++i) {
    const char32_t c = piece[i];
    const bool separable =
        (c == U':' || c == U',')
            ? (i + 1 >= piece.size() || !(piece[i + 1] >= U'0' && piece[i + 1] <= U'9'))
            : is_closing_punct(c);
    if (separable) {
      if (!current.empty()) parts.push_back(current);
      parts.push_back(std::u32string(1, c));
      current.clear();
    } else {
      current += c;
    }
  }
  if (!current.empty()) parts.push_back(current);
  // The sentence-final period stands alone too, also before closing quotes and brackets.
  if (sentence_final) {
    size_t k = parts.size();
    while (k > 0 && parts[k - 1].size() == 1 && is_closing_punct(parts[k - 1][0]))
      --k;
    if (k > 0) {
      std::u32string& word = parts[k - 1];
      if (word.size() > 1 && word.back() == U'.' && word[word.size() - 2] != U'.') {
        word.pop_back();
        parts.insert(parts.begin() + static_cast<std::ptrdiff_t>(k), U".");
      }
    }
  }
  static const std::u32string_view kSuffixes[] = {U"n't", U"'ll", U"'re", U"'ve",
                                                  U"'s",  U"'m",  U"'d"};
  static const std::pair<std::u32string_view, size_t> kWholeWords[] = {
      {U"cannot", 3}, {U"gonna", 3}, {U"gotta", 3}, {U"gimme", 3},
      {U"lemme", 3},  {U"wanna", 3}, {U"d'ye", 1}};
  for (auto& part : parts) {
    bool split = false;
    for (const auto suffix : kSuffixes) {
      if (part.size() > suffix.size() && ends_with_ci(part, suffix)) {
        out->push_back(part.substr(0, part.size() - suffix.size()));
        out->push_back(part.substr(part.size() - suffix.size()));
        split = true;
        break;
      }
    }
    if (!split) {
      const std::u32string lower = py_lower(part);
      for (const auto& [word, at] : kWholeWords) {
        if (lower == word) {
          out->push_back(part.substr(0, at));
          out->push_back(part.substr(at));
          split = true;
          break;
        }
      }
    }
    if (!split) out->push_back(part);
  }
}

// What Punkt lets follow a sentence-ending character directly (besides whitespace).
bool follows_sentence_end(char32_t c) {
  return c == U')' || c == U'"' || c == U';' || c == U'}' || c == U']' || c == U'*' || c == U':' ||
         c == U'@' || c == U'\'' || c == U'(' || c == U'{' || c == U'[' || c == U'!' || c == U'?' ||
         c == U'\u201D' || c == U'\u2019' || c == U'\u00BB';
}

bool starts_upper(const std::u32string& word) {
  for (const char32_t c : word) {
    if (py_isword(c)) return py_isupper(std::u32string_view(&c, 1));
  }
  return false;
}

bool starts_lower(const std::u32string& word) {
  for (const char32_t c : word) {
    if (py_isword(c)) return py_islower(std::u32string_view(&c, 1));
  }
  return false;
}

// The lower-cased word without leading punctuation, as Punkt's tokenizer would give its type.
std::u32string word_type(std::u32string_view core) {
  size_t a = 0;
  while (a < core.size() && !py_isword(core[a]))
    ++a;
  return py_lower(core.substr(a));
}

// Abbreviations whose period ends no sentence by itself (lower case, without the final period),
// as in the newspaper English Punkt's English model was trained on. Titles precede names, so a
// capital after them continues the sentence; after the others a capital starts a new one.
// Latin "e.g.", "i.e.", "etc." and "No.", "Fig.", "approx." are not among them: the reference
// ends a sentence there like after any word.
enum class Abbreviation { kNone, kTitle, kOther };

Abbreviation known_abbreviation(const std::u32string& type) {
  static const std::u32string_view kTitles[] = {U"mr",   U"mrs", U"ms",     U"dr",  U"prof", U"st",
                                                U"gen",  U"col", U"lt",     U"sen", U"rep",  U"gov",
                                                U"capt", U"rev", U"messrs", U"mt"};
  static const std::u32string_view kOthers[] = {
      U"sr",  U"jr",   U"vs",   U"inc", U"ltd", U"co",  U"corp", U"a.m", U"p.m",   U"u.s",
      U"u.k", U"d.c",  U"ph.d", U"jan", U"feb", U"mar", U"apr",  U"jun", U"jul",   U"aug",
      U"sep", U"sept", U"oct",  U"nov", U"dec", U"ave", U"bros", U"n.y", U"calif", U"fla"};
  for (const auto a : kTitles)
    if (type == a) return Abbreviation::kTitle;
  for (const auto a : kOthers)
    if (type == a) return Abbreviation::kOther;
  return Abbreviation::kNone;
}

// Capitalized, these words start sentences rather than continue names: after an abbreviation,
// an initial or a number, Punkt's orthographic evidence ends the sentence before them.
bool sentence_starter(const std::u32string& next) {
  static const std::u32string_view kStarters[] = {
      U"the",    U"then",    U"he",    U"she", U"it",  U"they", U"we",  U"this", U"that",  U"there",
      U"these",  U"those",   U"but",   U"and", U"so",  U"in",   U"on",  U"at",   U"a",     U"an",
      U"his",    U"her",     U"their", U"our", U"my",  U"its",  U"if",  U"when", U"while", U"after",
      U"before", U"however", U"also",  U"as",  U"for", U"what", U"who", U"how",  U"why",   U"i"};
  if (!starts_upper(next)) return false;
  const std::u32string type = word_type(next);
  size_t end = 0;
  while (end < type.size() && py_isword(type[end]))
    ++end;
  const std::u32string word = type.substr(0, end);
  for (const auto s : kStarters)
    if (word == s) return true;
  return false;
}

bool is_number(std::u32string_view word) {
  bool digit = false;
  for (const char32_t c : word) {
    if (c >= U'0' && c <= U'9') {
      digit = true;
    } else if (c != U'.' && c != U',' && c != U'-') {
      return false;
    }
  }
  return digit;
}

// Whether Punkt would end a sentence after whitespace-delimited `token`, followed by `next`: at
// '?' or '!'; at '.' after an ordinary word whatever follows; after a number unless a lower-case
// word follows; after an abbreviation before a capital (a title or an initial: before a
// capitalized sentence starter only); after an ellipsis before a capital.
bool ends_sentence(const std::u32string& token, const std::u32string& next) {
  // The sentence-end character: the token's last . ? or ! followed only by punctuation, the
  // first of which Punkt accepts after a sentence end (closing quotes and brackets, * : @ ...).
  size_t end = token.size();
  while (end > 0 && !py_isword(token[end - 1]) && token[end - 1] != U'.' &&
         token[end - 1] != U'?' && token[end - 1] != U'!')
    --end;
  if (end == 0) return false;
  if (end < token.size() && !follows_sentence_end(token[end])) return false;
  const char32_t last = token[end - 1];
  if (last == U'?' || last == U'!') return true;
  if (last != U'.') return false;
  const std::u32string_view core = std::u32string_view(token).substr(0, end);
  if (core.size() >= 2 && core[core.size() - 2] == U'.') return starts_upper(next);  // "..."
  const std::u32string type = word_type(core.substr(0, core.size() - 1));
  if (type.empty()) return true;                                              // a lone "." token
  if (type.size() == 1 && py_isword(type[0])) return sentence_starter(next);  // an initial
  if (is_number(type)) return !starts_lower(next);
  switch (known_abbreviation(type)) {
    case Abbreviation::kTitle:
      return sentence_starter(next);
    case Abbreviation::kOther:
      return starts_upper(next);
    case Abbreviation::kNone:
      return true;
  }
  return true;
}

}  // namespace

size_t count_sentences(std::string_view text) {
  const std::u32string u = decode_utf8(text);
  const auto tokens = py_split(u);
  if (tokens.empty()) return 0;
  size_t sentences = 1;
  for (size_t i = 0; i + 1 < tokens.size(); ++i)
    if (ends_sentence(tokens[i], tokens[i + 1])) ++sentences;
  return sentences;
}

size_t count_capital_words(std::string_view text) {
  const std::u32string u = decode_utf8(text);
  const auto pieces = py_split(u);
  std::vector<std::u32string> tokens;
  for (size_t i = 0; i < pieces.size(); ++i) {
    // A period ends the sentence when the piece is the last one or the next one does not
    // start in lower case (what Punkt mostly decides, abbreviations aside).
    const bool final = i + 1 == pieces.size() || !py_islower(pieces[i + 1].substr(0, 1));
    split_piece(pieces[i], final, &tokens);
  }
  size_t upper = 0;
  for (const auto& t : tokens)
    if (py_isupper(t)) ++upper;
  return upper;
}

std::optional<std::string> detect_language(std::string_view text) {
  const std::string valid = valid_utf8(text);
  CLD2::Language top3[3];
  int percent3[3];
  double scores3[3];
  CLD2::ResultChunkVector chunks;
  int letters = 0;  // bytes of text the detector scored: none when there are no letters
  bool reliable = false;
  int valid_prefix = 0;
  const CLD2::CLDHints hints = {nullptr, nullptr, CLD2::UNKNOWN_ENCODING, CLD2::UNKNOWN_LANGUAGE};
  const CLD2::Language top = CLD2::ExtDetectLanguageSummaryCheckUTF8(
      valid.data(), static_cast<int>(valid.size()), /*is_plain_text=*/true, &hints, /*flags=*/0,
      top3, percent3, scores3, &chunks, &letters, &reliable, &valid_prefix);
  if (letters == 0) return std::nullopt;
  // Mixed text: the language of most letters wins, as it does for langdetect, whose evidence
  // is n-grams of characters. CLD2's own summary weighs bytes, which favours scripts of 2-3
  // bytes a character (a Korean line beside a longer English one would win).
  std::map<int, size_t> per_language;
  for (const auto& chunk : chunks) {
    const auto lang = static_cast<CLD2::Language>(chunk.lang1);
    if (lang == CLD2::UNKNOWN_LANGUAGE) continue;
    const std::u32string piece = decode_utf8(std::string_view(valid).substr(
        static_cast<size_t>(chunk.offset), static_cast<size_t>(chunk.bytes)));
    per_language[lang] += static_cast<size_t>(
        std::count_if(piece.begin(), piece.end(), [](char32_t c) { return py_isword(c); }));
  }
  CLD2::Language best = top;
  size_t most = 0;
  for (const auto& [lang, count] : per_language) {
    if (count > most) most = count, best = static_cast<CLD2::Language>(lang);
  }
  if (best == CLD2::UNKNOWN_LANGUAGE) return std::nullopt;
  return std::string(CLD2::LanguageCode(best));
}

}  // namespace flywheel::verifiers
