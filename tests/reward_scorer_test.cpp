// Reward-model scoring (verifiers/reward_model): scores equal the training forward's — every
// pair collated into one right-padded batch as reward training does it, and each sequence alone
// with no padding — whatever the scorer's batching; texts tokenize as the pair loader does.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/fixtures.h"
#include "tests/run_binary.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/data/batching.h"
#include "trainer/data/examples.h"
#include "verifiers/reward_model/reward_scorer.h"

namespace flywheel {
namespace {

TEST(RewardScorer, ScoresEqualTheTrainingForward) {
  const std::string dir = testing::models_dir() + "/stories260K";
  FLYWHEEL_REQUIRE_PATH(dir);
  const Tokenizer tokenizer = Tokenizer::from_dir(dir);
  // A causal LM with a fresh score head: a reward model at the start of training.
  auto model = load_reward_model(dir, torch::kFloat32, torch::kCPU, 0.5, 7);
  const std::string data = testing::make_temp_dir("rm") + "/pairs.jsonl";
  const std::vector<std::array<std::string, 3>> texts = {
      {"Once upon a time", " there was a cat.", " a dog ran far away into the big woods."},
      {"Lily saw a bird", " and smiled.", " It flew."},
      {"Tom had a red ball. He", " threw it to his friend Sam, who laughed.", " cried."}};
  {
    std::ofstream out(data);
    for (const auto& [p, c, r] : texts)
      out << nlohmann::json({{"prompt", p}, {"chosen", c}, {"rejected", r}}).dump() << "\n";
  }
  const auto pairs = load_preference_examples(data, tokenizer, DataOptions{}, nullptr);
  ASSERT_EQ(pairs.size(), texts.size());
  std::vector<std::vector<int64_t>> sequences;
  for (const auto& p : pairs) {
    sequences.push_back(p.chosen.ids);
    sequences.push_back(p.rejected.ids);
  }

  // Training's forward: all sequences in one right-padded batch.
  std::vector<std::vector<int32_t>> ids;
  std::vector<std::vector<uint8_t>> masks;
  for (const auto& s : sequences) {
    ids.emplace_back(s.begin(), s.end());
    masks.emplace_back(s.size(), 1);
  }
  std::vector<TokenView> views;
  for (size_t i = 0; i < ids.size(); ++i)
    views.push_back({ids[i], masks[i]});
  const auto batch = collate(views, tokenizer.pad_id());
  DecoderInput in(batch.input_ids, batch.position_ids, batch.attention_mask);
  in.right_padded = batch.right_padded;
  torch::Tensor trained;
  {
    torch::NoGradGuard no_grad;
    trained = model->forward(in).select(1, 0).to(torch::kFloat64);
  }

  for (const int64_t batch_size : {1, 4, 16}) {
    RewardScorerOptions options;
    options.batch_size = batch_size;
    RewardScorer scorer(model, tokenizer, options);
    const auto scores = scorer.score(sequences);
    for (size_t i = 0; i < sequences.size(); ++i) {
      EXPECT_NEAR(scores[i], trained[static_cast<int64_t>(i)].item<double>(), 1e-5)
          << "sequence " << i << ", batch size " << batch_size;
      // Alone, with no padding at all: the last position's score.
      torch::NoGradGuard no_grad;
      const auto one = torch::tensor(sequences[i]).unsqueeze(0);
      const auto alone = model->forward(DecoderInput(one, {}, torch::ones_like(one)));
      EXPECT_NEAR(scores[i], alone.item<double>(), 1e-5);
    }
  }

  // (prompt, response) texts tokenize as the loader tokenizes the pairs.
  RewardScorer scorer(model, tokenizer, RewardScorerOptions{});
  EXPECT_EQ(scorer.encode(texts[0][0], texts[0][1]), pairs[0].chosen.ids);
  EXPECT_EQ(scorer.encode(texts[2][0], texts[2][2]), pairs[2].rejected.ids);
  const auto from_text = scorer.score_texts({{texts[1][0], texts[1][1]}});
  EXPECT_NEAR(from_text[0], trained[2].item<double>(), 1e-5);
}

// flywheel eval-rm on a reward model saved as Hugging Face writes one: the per-pair scores it
// writes equal the scorer's, and the accuracy it prints (ties half) is theirs.
TEST(RewardScorer, EvalRmCommand) {
  const std::string base = testing::models_dir() + "/stories260K";
  FLYWHEEL_REQUIRE_PATH(base);
  const std::string work = testing::make_temp_dir("eval-rm");
  const std::string dir = work + "/rm";
  auto model = load_reward_model(base, torch::kFloat32, torch::kCPU, 0.5, 11);
  save_pretrained(dir, *model, model->config());
  std::filesystem::copy_file(base + "/tokenizer.model", dir + "/tokenizer.model");
  {
    std::ofstream out(work + "/pairs.jsonl");
    for (int i = 0; i < 6; ++i) {
      out << nlohmann::json({{"prompt", "Once upon a time"},
                             {"chosen", std::string(" there was a cat") + std::string(i, '!')},
                             {"rejected", " a dog ran" + std::string(2 * i, '.')}})
                 .dump()
          << "\n";
    }
  }
  const auto run = testing::run_flywheel("eval-rm --model " + dir + " --data " + work +
                                         "/pairs.jsonl --out " + work + "/scores.jsonl");
  ASSERT_EQ(run.status, 0) << run.output;
  double correct = 0;
  int n = 0;
  std::ifstream in(work + "/scores.jsonl");
  for (std::string line; std::getline(in, line); ++n) {
    const auto row = nlohmann::json::parse(line);
    const double c = row["chosen"], r = row["rejected"];
    correct += c > r ? 1.0 : c == r ? 0.5 : 0.0;
  }
  ASSERT_EQ(n, 6);
  char expected[64];
  std::snprintf(expected, sizeof expected, "pairwise accuracy        %.4f", correct / n);
  EXPECT_NE(run.output.find(expected), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("length diff"), std::string::npos);

  // A causal LM is not a reward model: a clear error, exit status 2.
  const auto wrong =
      testing::run_flywheel("eval-rm --model " + base + " --data " + work + "/pairs.jsonl");
  EXPECT_EQ(wrong.status, 2) << wrong.output;
  EXPECT_NE(wrong.output.find("not a reward model"), std::string::npos) << wrong.output;
}

}  // namespace
}  // namespace flywheel
