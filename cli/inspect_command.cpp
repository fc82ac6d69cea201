// `flywheel inspect DIR`: what a checkpoint is, without building the model.
#include <cstdio>
#include <filesystem>
#include <map>

#include "cli/args.h"
#include "cli/commands.h"
#include "trainer/checkpoint/safetensors.h"
#include "trainer/core/error.h"
#include "trainer/model/model_config.h"

namespace flywheel::cli {

int run_inspect(const std::vector<std::string>& argv) {
  const std::vector<FlagSpec> specs = {};
  Args args("inspect", specs, argv);
  if (args.help()) {
    std::fputs(format_help("inspect", "DIR",
                           "Prints the architecture, parameter count, dtypes and tensor list of "
                           "a Hugging Face model directory.",
                           specs)
                   .c_str(),
               stdout);
    return 0;
  }
  if (args.positionals().size() != 1) {
    throw UserError("flywheel inspect: expected exactly one model directory");
  }
  const std::string dir = args.positionals()[0];
  const auto config = load_model_config((std::filesystem::path(dir) / "config.json").string());
  const auto tensors = load_safetensors_dir(dir);

  int64_t params = 0;
  std::map<std::string, int64_t> per_dtype;
  for (const auto& [name, t] : tensors) {
    params += t.numel();
    per_dtype[std::string(c10::toString(t.scalar_type()))] += t.numel();
  }
  std::printf("architecture   %s (model_type %s)\n", config.architecture.c_str(),
              config.model_type.c_str());
  std::printf("layers         %lld, hidden %lld, mlp %lld, heads %lld (kv %lld, head_dim %lld)\n",
              (long long)config.num_hidden_layers, (long long)config.hidden_size,
              (long long)config.intermediate_size, (long long)config.num_attention_heads,
              (long long)config.num_key_value_heads, (long long)config.head_dim);
  std::printf(
      "vocab          %lld, tied embeddings %s, rope theta %g%s\n", (long long)config.vocab_size,
      config.tie_word_embeddings ? "yes" : "no", config.rope_theta,
      config.rope_scaling.type.empty() ? "" : (", scaling " + config.rope_scaling.type).c_str());
  std::printf("config dtype   %s\n", dtype_name(config.dtype).c_str());
  std::printf("parameters     %lld (%.3f M)\n", (long long)params, params / 1e6);
  for (const auto& [dtype, n] : per_dtype) {
    std::printf("  %-12s %lld\n", dtype.c_str(), (long long)n);
  }
  std::printf("tensors        %zu\n", tensors.size());
  for (const auto& [name, t] : tensors) {
    std::string shape;
    for (auto s : t.sizes())
      shape += (shape.empty() ? "" : ", ") + std::to_string(s);
    std::printf("  %-56s %-9s [%s]\n", name.c_str(), c10::toString(t.scalar_type()), shape.c_str());
  }
  return 0;
}

}  // namespace flywheel::cli
