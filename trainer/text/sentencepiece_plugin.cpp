// The only translation unit that includes SentencePiece; built as libflywheel_sentencepiece.so
// (see sentencepiece_backend.h for why it is a plugin). Exposes two C entry points.
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include "trainer/text/sentencepiece_backend.h"

namespace flywheel {
namespace {

class Backend final : public SentencePieceBackend {
 public:
  sentencepiece::util::Status load(const std::string& path) { return sp_.Load(path); }

  int piece_size() const override { return sp_.GetPieceSize(); }
  int bos_id() const override { return sp_.bos_id(); }
  int eos_id() const override { return sp_.eos_id(); }
  int pad_id() const override { return sp_.pad_id(); }
  int unk_id() const override { return sp_.unk_id(); }
  bool is_control(int id) const override { return sp_.IsControl(id); }
  bool is_unknown(int id) const override { return sp_.IsUnknown(id); }
  std::string id_to_piece(int id) const override { return sp_.IdToPiece(id); }
  int piece_to_id(const std::string& piece) const override { return sp_.PieceToId(piece); }

  bool encode(const std::string& text, std::vector<int>* ids,
              std::vector<std::pair<size_t, size_t>>* spans, std::string* error) const override {
    sentencepiece::ImmutableSentencePieceText pieces;
    const auto status = sp_.Encode(text, pieces.mutable_proto());
    if (!status.ok()) {
      *error = status.ToString();
      return false;
    }
    for (const auto& piece : pieces.pieces()) {
      ids->push_back(static_cast<int>(piece.id()));
      spans->emplace_back(piece.begin(), piece.end());
    }
    return true;
  }

  std::string decode(const std::vector<int>& ids) const override { return sp_.DecodeIds(ids); }

 private:
  sentencepiece::SentencePieceProcessor sp_;
};

}  // namespace
}  // namespace flywheel

// Returns a backend for `path`, or null with *error set.
extern "C" __attribute__((visibility("default"))) flywheel::SentencePieceBackend*
flywheel_sentencepiece_load(const char* path, std::string* error) {
  auto backend = std::make_unique<flywheel::Backend>();
  const auto status = backend->load(path);
  if (!status.ok()) {
    *error = status.ToString();
    return nullptr;
  }
  return backend.release();
}

// Trains a model from SentencePiece trainer flags; false with *error set on failure.
extern "C" __attribute__((visibility("default"))) bool flywheel_sentencepiece_train(
    const char* flags, std::string* error) {
  const auto status = sentencepiece::SentencePieceTrainer::Train(flags);
  if (!status.ok()) *error = status.ToString();
  return status.ok();
}
