#include "trainer/train/decontamination.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/core/error.h"
#include "trainer/eval/decontaminate.h"

namespace flywheel {

namespace fs = std::filesystem;

void decontaminate_recipe_data(Recipe& recipe, Communicator& comm) {
  const DataSection& data = recipe.data;
  if (!data.decontaminate) return;
  std::vector<std::string> evals;
  for (const auto& path : {data.eval_file, recipe.eval.generation_file}) {
    if (!path.empty() && std::find(evals.begin(), evals.end(), path) == evals.end())
      evals.push_back(path);
  }
  if (evals.empty()) {
    throw UserError(recipe.source +
                    ": data.decontaminate: the recipe has no eval set to decontaminate against "
                    "(data.eval_file or eval.generation_file)");
  }
  std::string name = fs::path(data.train_file).filename().string();
  if (name.size() > 3 && name.ends_with(".gz")) name.resize(name.size() - 3);  // written plain
  const fs::path dir = fs::path(recipe.output_dir) / "decontaminated";
  const std::string clean = (dir / name).string();
  if (comm.rank() == 0) {
    fs::create_directories(dir);
    DecontaminationOptions options;
    options.ngram = static_cast<int>(data.decontaminate_ngram);
    options.threshold = data.decontaminate_threshold;
    const DecontaminationReport report =
        decontaminate_files(data.train_file, evals, {}, {}, options, /*threads=*/0);
    const int64_t written = copy_jsonl_without_lines(
        data.train_file, clean, {report.flagged.begin(), report.flagged.end()});
    auto j = report.to_json();
    j["out"] = {{"path", clean}, {"lines_written", written}};
    const fs::path json_path = fs::path(recipe.output_dir) / "decontamination.json";
    write_file_atomic(json_path.string(), j.dump(2) + "\n");
    for (const EvalSetReport& s : report.sets) {
      std::fprintf(stderr,
                   "decontaminate: %s: %zu of %lld instances (%.2f%%) found in %zu training "
                   "rows\n",
                   s.path.c_str(), s.overlapping.size(), static_cast<long long>(s.instances),
                   100 * s.fraction(), s.training_lines.size());
    }
    std::fprintf(stderr, "decontaminate: %s: %zu of %lld rows dropped; training on %s (%s)\n",
                 data.train_file.c_str(), report.flagged.size(),
                 static_cast<long long>(report.training_rows), clean.c_str(),
                 json_path.string().c_str());
  }
  comm.barrier();
  recipe.data.train_file = clean;
}

}  // namespace flywheel
