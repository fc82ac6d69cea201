#include "trainer/text/decode_stream.h"

namespace flywheel {
namespace {

bool ends_with_replacement(const std::string& s) {
  static const std::string kReplacement = "\xEF\xBF\xBD";
  return s.size() >= kReplacement.size() &&
         s.compare(s.size() - kReplacement.size(), kReplacement.size(), kReplacement) == 0;
}

}  // namespace

std::string DecodeStream::push(int64_t id) {
  pending_.push_back(id);
  return step(/*final=*/false);
}

std::string DecodeStream::finish() {
  return pending_.empty() ? std::string() : step(/*final=*/true);
}

std::string DecodeStream::step(bool final) {
  const std::string before = tokenizer_.decode(context_, keep_special_);
  std::vector<int64_t> window = context_;
  window.insert(window.end(), pending_.begin(), pending_.end());
  const std::string text = tokenizer_.decode(window, keep_special_);
  // The context decodes to a prefix of the window's text unless the new ids change how the
  // context's bytes read (its own trailing bytes completed); then nothing is final yet.
  const bool extends = text.size() >= before.size() && text.compare(0, before.size(), before) == 0;
  if (!final && (!extends || ends_with_replacement(text))) return "";
  // At the end, text that rewrote the context's (which cannot be taken back) yields its part
  // past what the two share.
  size_t shared = 0;
  while (shared < before.size() && shared < text.size() && before[shared] == text[shared])
    ++shared;
  std::string out = text.substr(shared);
  context_ = std::move(pending_);
  pending_.clear();
  return out;
}

}  // namespace flywheel
