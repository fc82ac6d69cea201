#include "verifiers/ifeval_text.h"

#include <cld2/public/compact_lang_det.h>
#include <unicode/brkiter.h>
#include <unicode/filteredbrk.h>
#include <unicode/locid.h>
#include <unicode/unistr.h>

#include <memory>
#include <mutex>

#include "verifiers/text.h"
#include "verifiers/unicode_text.h"

namespace flywheel::verifiers {
namespace {

// One prototype, cloned per call: creating an iterator loads rules (slow); a clone is cheap
// and iterators are not thread-safe.
std::unique_ptr<icu::BreakIterator> sentence_iterator() {
  static std::once_flag once;
  static std::unique_ptr<icu::BreakIterator> prototype;
  std::call_once(once, [] {
    UErrorCode status = U_ZERO_ERROR;
    std::unique_ptr<icu::BreakIterator> plain(
        icu::BreakIterator::createSentenceInstance(icu::Locale::getEnglish(), status));
    std::unique_ptr<icu::FilteredBreakIteratorBuilder> filter(
        icu::FilteredBreakIteratorBuilder::createEmptyInstance(status));
    if (U_FAILURE(status)) return;
    // Abbreviations after which a period does not end a sentence. Debian's ICU data has no
    // English suppression list (the locale's "ss=standard" finds none), so this is ours: the
    // titles, Latin abbreviations and units common in English prose.
    for (const char* abbreviation :
         {"Mr.",   "Mrs.", "Ms.",   "Dr.",   "Prof.", "Sr.",  "Jr.",     "St.",   "Mt.",
          "Capt.", "Col.", "Gen.",  "Lt.",   "Sgt.",  "Rev.", "Gov.",    "Sen.",  "Rep.",
          "Hon.",  "vs.",  "etc.",  "e.g.",  "i.e.",  "cf.",  "approx.", "a.m.",  "p.m.",
          "A.M.",  "P.M.", "U.S.",  "U.K.",  "Inc.",  "Ltd.", "Co.",     "Corp.", "No.",
          "Nos.",  "Fig.", "Figs.", "Vol.",  "pp.",   "Jan.", "Feb.",    "Mar.",  "Apr.",
          "Jun.",  "Jul.", "Aug.",  "Sep.",  "Sept.", "Oct.", "Nov.",    "Dec.",  "Ave.",
          "Blvd.", "Rd.",  "Dept.", "Univ.", "Ph.D.", "M.D.", "B.A.",    "M.A.",  "D.C."})
      filter->suppressBreakAfter(icu::UnicodeString::fromUTF8(abbreviation), status);
    prototype.reset(filter->wrapIteratorWithFilter(plain.release(), status));
    if (U_FAILURE(status)) prototype.reset();
  });
  if (!prototype) return nullptr;
  return std::unique_ptr<icu::BreakIterator>(prototype->clone());
}

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
  // The sentence-final period stands alone too.
  if (sentence_final && !parts.empty()) {
    std::u32string& last = parts.back();
    if (last.size() > 1 && last.back() == U'.' && last[last.size() - 2] != U'.') {
      last.pop_back();
      parts.push_back(U".");
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

}  // namespace

size_t count_sentences(std::string_view text) {
  std::string flat(text);
  for (char& c : flat)
    if (c == '\n' || c == '\r') c = ' ';
  const icu::UnicodeString u = icu::UnicodeString::fromUTF8(
      icu::StringPiece(flat.data(), static_cast<int32_t>(flat.size())));
  auto it = sentence_iterator();
  if (!it) return 0;
  it->setText(u);
  size_t count = 0;
  int32_t start = it->first();
  for (int32_t end = it->next(); end != icu::BreakIterator::DONE; start = end, end = it->next()) {
    bool content = false;
    for (int32_t i = start; i < end && !content; ++i)
      content = !u_isUWhiteSpace(u.charAt(i));
    if (content) ++count;
  }
  return count;
}

size_t count_capital_words(std::string_view text) {
  const std::u32string u = decode_utf8(text);
  const auto pieces = py_split(u);
  std::vector<std::u32string> tokens;
  for (size_t i = 0; i < pieces.size(); ++i) {
    // A period ends the sentence when the piece is the last one or the next one starts upper
    // case (what Punkt would mostly decide).
    const bool final = i + 1 == pieces.size() ||
                       (!pieces[i + 1].empty() && py_isupper(pieces[i + 1].substr(0, 1)));
    split_piece(pieces[i], final, &tokens);
  }
  size_t upper = 0;
  for (const auto& t : tokens)
    if (py_isupper(t)) ++upper;
  return upper;
}

std::optional<std::string> detect_language(std::string_view text) {
  const std::string valid = valid_utf8(text);
  bool reliable = false;
  CLD2::Language top3[3];
  int percent3[3];
  int letters = 0;  // bytes of text the detector scored: none when there are no letters
  const CLD2::Language lang =
      CLD2::DetectLanguageSummary(valid.data(), static_cast<int>(valid.size()),
                                  /*is_plain_text=*/true, top3, percent3, &letters, &reliable);
  if (lang == CLD2::UNKNOWN_LANGUAGE || letters == 0) return std::nullopt;
  return std::string(CLD2::LanguageCode(lang));
}

}  // namespace flywheel::verifiers
