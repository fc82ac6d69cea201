// SentencePiece behind a narrow interface, loaded from a plugin at run time.
//
// Why a plugin: Debian's libsentencepiece bundles and exports protobuf-lite 3.14, while
// LibTorch exports the protobuf it was built with (libtorch_cpu.so defines its symbols). In
// one global symbol namespace each binds to the other's copy and the process aborts at
// start-up ("compiled against version 3.14.0 of the Protocol Buffer runtime"). The plugin
// (libflywheel_sentencepiece.so, built next to the executables) is dlopen'ed with
// RTLD_LOCAL | RTLD_DEEPBIND so sentencepiece resolves protobuf to its own copy and LibTorch
// never sees it.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace flywheel {

class SentencePieceBackend {
 public:
  virtual ~SentencePieceBackend() = default;

  virtual int piece_size() const = 0;
  virtual int bos_id() const = 0;  // -1 when the model defines none
  virtual int eos_id() const = 0;
  virtual int pad_id() const = 0;
  virtual int unk_id() const = 0;
  virtual bool is_control(int id) const = 0;
  virtual bool is_unknown(int id) const = 0;
  virtual std::string id_to_piece(int id) const = 0;
  virtual int piece_to_id(const std::string& piece) const = 0;
  // Encodes `text`; spans are byte offsets [begin, end) into `text`. False + error on failure.
  virtual bool encode(const std::string& text, std::vector<int>* ids,
                      std::vector<std::pair<size_t, size_t>>* spans, std::string* error) const = 0;
  virtual std::string decode(const std::vector<int>& ids) const = 0;
};

// Loads a SentencePiece model file; UserError if the plugin or the model cannot be loaded.
std::unique_ptr<SentencePieceBackend> load_sentencepiece(const std::string& model_path);

// Runs SentencePiece's trainer with its command-line style flags
// ("--input=... --model_prefix=... --vocab_size=..."); UserError on failure.
void train_sentencepiece(const std::string& flags);

}  // namespace flywheel
