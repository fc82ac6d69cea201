#include "trainer/train/checkpointer.h"

#include <ATen/CPUGeneratorImpl.h>

#include <filesystem>
#include <fstream>

#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/checkpoint/safetensors.h"
#include "trainer/core/error.h"

namespace flywheel {

namespace fs = std::filesystem;

namespace {

std::string join(const std::string& dir, const std::string& subdir) {
  return subdir.empty() ? dir : dir + "/" + subdir;
}

nlohmann::json read_state(const std::string& path) {
  std::ifstream in(path);
  const auto state = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (state.is_discarded() || !state.is_object())
    throw UserError(path + ": not a JSON object (a damaged checkpoint?)");
  return state;
}

}  // namespace

Checkpointer::Checkpointer(const std::string& root, int64_t keep_last, Communicator& comm)
    : store_(root, keep_last), comm_(comm) {}

void Checkpointer::add_model(const std::string& name, torch::nn::Module& module, SaveModelFn save,
                             ParameterShards* shards) {
  models_.push_back({name, &module, std::move(save), shards});
}

void Checkpointer::add_optimizer(const std::string& subdir, Optimizer& optimizer) {
  optimizers_.push_back({subdir, &optimizer});
}

void Checkpointer::write(const std::string& dir, const nlohmann::json& state) const {
  for (const auto& m : models_) {
    const std::string model_dir = join(dir, m.name);
    save_on_main(m.shards, comm_, [&](const BeforeWrite& before) {
      fs::create_directories(model_dir);
      m.save(model_dir, before);
    });
  }
  if (comm_.is_main()) {
    auto rng = at::detail::getDefaultCPUGenerator().get_state();
    write_safetensors(dir + "/rng.safetensors", {{"torch_cpu", rng}});
    write_file_atomic(dir + "/trainer_state.json", state.dump(2) + "\n");
  }
  for (const auto& o : optimizers_) {
    fs::create_directories(join(dir, o.subdir));
    o.optimizer->write(join(dir, o.subdir));
  }
}

void Checkpointer::save(int64_t step, nlohmann::json state) {
  state["step"] = step;
  state["world_size"] = comm_.world_size();
  last_saved_ = step;
  if (comm_.world_size() == 1) {
    store_.save(step, [&](const std::string& dir) { write(dir, state); });
    return;
  }
  if (comm_.is_main()) store_.begin(step);
  comm_.barrier();
  write(store_.staging_dir(step), state);
  comm_.barrier();
  if (comm_.is_main()) store_.commit(step);
}

void Checkpointer::keep(std::optional<int64_t> step) {
  if (comm_.is_main()) store_.keep(step);
}

int64_t Checkpointer::restore_latest(std::vector<std::string>* notes) {
  std::vector<std::string> problems;
  std::optional<CheckpointRef> found;
  if (comm_.is_main()) found = store_.latest_valid(&problems);
  // Rank 0's choice, sent to all (the others contribute zero to the sum).
  auto chosen = torch::zeros({1}, torch::kFloat64);
  if (comm_.is_main()) chosen[0] = found ? static_cast<double>(found->step) : -1.0;
  const auto step = static_cast<int64_t>(comm_.all_reduce_sum_cpu(chosen).item<double>());
  for (const auto& p : problems)
    notes->push_back("skipping damaged checkpoint " + p);
  if (step < 0) {
    notes->push_back("no valid checkpoint to resume from; starting at step 0");
    return 0;
  }
  if (!comm_.is_main()) found = store_.find(step);
  if (!found) {
    throw UserError("rank " + std::to_string(comm_.rank()) + " cannot see checkpoint step " +
                    std::to_string(step) + " that rank 0 resumes from (is output_dir on a " +
                    "shared filesystem?)");
  }
  for (const auto& m : models_) {
    const std::string model_dir = join(found->dir, m.name);
    const auto config = load_model_config(model_dir + "/config.json");
    const auto tensors = load_safetensors_dir(model_dir);
    if (m.shards != nullptr) {
      // Each rank reads its own parts, a unit at a time.
      check_parameters(*m.module, tensors, config, model_dir);
      m.shards->load(tensors);
    } else {
      load_parameters(*m.module, tensors, config, model_dir);
    }
  }
  for (const auto& o : optimizers_)
    o.optimizer->load(join(found->dir, o.subdir));
  SafetensorsFile rng(found->dir + "/rng.safetensors");
  auto generator = at::detail::getDefaultCPUGenerator();
  generator.set_state(rng.tensor("torch_cpu").clone());
  restored_state_ = read_state(found->dir + "/trainer_state.json");
  notes->push_back("resumed from " + found->dir);
  return step;
}

std::optional<std::string> Checkpointer::newest() const {
  const auto all = store_.list();
  if (all.empty()) return std::nullopt;
  return all.back().dir;
}

void save_on_main(ParameterShards* shards, Communicator& comm,
                  const std::function<void(const BeforeWrite& before)>& save) {
  if (shards != nullptr) {
    shards->write_streamed(0, save);
  } else if (comm.is_main()) {
    save({});
  }
}

void publish_model(const std::string& dir, const SaveModelFn& save, const BeforeWrite& before) {
  const fs::path final_dir(dir);
  const fs::path tmp = dir + ".tmp";
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  save(tmp.string(), before);
  fs::remove_all(final_dir);
  fs::rename(tmp, final_dir);
}

}  // namespace flywheel
