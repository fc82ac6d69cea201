#include <dlfcn.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>

#include "trainer/core/error.h"
#include "trainer/text/sentencepiece_backend.h"

namespace flywheel {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPluginName = "libflywheel_sentencepiece.so";

// Next to the running executable first (build/bin, or an install's bin/), then the build
// tree this binary was compiled in.
fs::path plugin_path() {
  std::error_code ec;
  const auto exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && fs::exists(exe.parent_path() / kPluginName)) return exe.parent_path() / kPluginName;
  return fs::path(FLYWHEEL_PLUGIN_DIR) / kPluginName;
}

void* plugin_symbol(const char* name) {
  static void* handle = nullptr;
  static std::string load_error;
  static std::once_flag once;
  std::call_once(once, [] {
    const auto path = plugin_path();
    handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (handle == nullptr)
      load_error = std::string("cannot load ") + path.string() + ": " + ::dlerror();
  });
  if (handle == nullptr) throw UserError("SentencePiece plugin: " + load_error);
  void* symbol = ::dlsym(handle, name);
  if (symbol == nullptr) throw UserError(std::string("SentencePiece plugin: no symbol ") + name);
  return symbol;
}

}  // namespace

std::unique_ptr<SentencePieceBackend> load_sentencepiece(const std::string& model_path) {
  using LoadFn = SentencePieceBackend* (*)(const char*, std::string*);
  auto load = reinterpret_cast<LoadFn>(plugin_symbol("flywheel_sentencepiece_load"));
  std::string error;
  std::unique_ptr<SentencePieceBackend> backend(load(model_path.c_str(), &error));
  if (!backend) throw UserError(model_path + ": not a SentencePiece model (" + error + ")");
  return backend;
}

void train_sentencepiece(const std::string& flags) {
  using TrainFn = bool (*)(const char*, std::string*);
  auto train = reinterpret_cast<TrainFn>(plugin_symbol("flywheel_sentencepiece_train"));
  std::string error;
  if (!train(flags.c_str(), &error)) throw UserError("SentencePiece training failed: " + error);
}

}  // namespace flywheel
