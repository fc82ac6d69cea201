// The prefix-tree forward (trainer/model/prefix_tree.h) computes each distinct prefix of a
// batch once and gives the plain forward's log-probs and gradients up to float rounding.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <map>
#include <vector>

#include "tests/fixtures.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/model/prefix_tree.h"
#include "trainer/train/objective.h"

namespace flywheel {
namespace {

// Prompts shared by several rows, a row repeated, rows of other lengths, a lone token.
std::vector<std::vector<int32_t>> rows_with_shared_prompts() {
  return {{1, 5, 9, 7}, {1, 5, 9, 8, 3, 3, 40}, {1, 5, 2}, {1, 5, 9, 7}, {1, 5, 9, 8, 3, 12}, {4},
          {1, 22, 5},   {1, 5, 9, 8, 3, 3, 41}};
}

TokenBatch batch_of(const std::vector<std::vector<int32_t>>& rows) {
  std::vector<std::vector<uint8_t>> trained;
  std::vector<TokenView> views;
  for (const auto& r : rows)
    trained.emplace_back(r.size(), 1);
  for (size_t i = 0; i < rows.size(); ++i)
    views.push_back({rows[i], trained[i]});
  return collate(views, /*pad_id=*/0);
}

TEST(PrefixTree, NodesAreTheBatchsDistinctPrefixes) {
  const auto rows = rows_with_shared_prompts();
  const auto batch = batch_of(rows);
  const auto tree = prefix_tree(batch.input_ids, batch.attention_mask);
  const int64_t T = batch.input_ids.size(1);
  // Every (row, position) maps to the node of its prefix: one node per distinct prefix, the
  // same node wherever the prefix recurs.
  std::map<std::vector<int32_t>, int64_t> node_of;
  const auto nodes = tree.nodes.view({std::ssize(rows), T});
  for (size_t r = 0; r < rows.size(); ++r) {
    for (size_t t = 0; t < rows[r].size(); ++t) {
      const std::vector<int32_t> prefix(rows[r].begin(), rows[r].begin() + t + 1);
      const auto node = nodes[r][t].item<int64_t>();
      const auto [it, added] = node_of.emplace(prefix, node);
      EXPECT_EQ(it->second, node) << "row " << r << " position " << t;
      EXPECT_EQ(tree.tokens[0][node].item<int64_t>(), rows[r][t]);
      EXPECT_EQ(tree.positions[0][node].item<int64_t>(), std::ssize(prefix) - 1);
      // Its output is taken from a place where the same prefix stands.
      const auto at = tree.first[node].item<int64_t>();
      EXPECT_EQ(nodes[at / T][at % T].item<int64_t>(), node);
    }
  }
  EXPECT_EQ(tree.size(), std::ssize(node_of));
}

double relative_error(const torch::Tensor& got, const torch::Tensor& want) {
  return (got - want).norm().item<double>() / want.norm().item<double>();
}

// stories260K, rows sharing prompts: every scored token's log-prob and every parameter's
// gradient through the tree equal the plain forward's (float32 rounding: 1e-5), with and
// without activation checkpointing.
TEST(PrefixTree, LogpsAndGradientsEqualThePlainForward) {
  const auto dir = testing::models_dir() + "/stories260K";
  FLYWHEEL_REQUIRE_PATH(dir);
  auto rows = rows_with_shared_prompts();
  for (auto& r : rows) {  // longer responses after the shared prompts
    for (int32_t i = 0; i < 20; ++i)
      r.push_back(static_cast<int32_t>((r.size() * 37 + i * 11) % 500 + 3));
  }
  const auto batch = batch_of(rows);
  const auto tree = prefix_tree(batch.input_ids, batch.attention_mask);
  ASSERT_LT(tree.size(), batch.token_count);
  const auto run = [&](bool through_tree, bool checkpointing) {
    auto model = load_causal_lm(dir);
    model->model->activation_checkpointing = checkpointing;
    torch::Tensor hidden;
    if (through_tree) {
      PrefixTreeAttention attention(tree);
      hidden = tree.to_rows(
          model->model->forward(DecoderInput(tree.tokens, tree.positions, {}, &attention)));
    } else {
      DecoderInput in(batch.input_ids, batch.position_ids, batch.attention_mask);
      in.right_padded = true;
      hidden = model->model->forward(in);
    }
    auto logps = losses::sequence_logps(hidden, model->head_weight(), batch.labels, 16);
    // A loss that weighs every row differently, so shared prompts sum different gradients.
    (logps.sum * torch::linspace(-1.0, 2.0, logps.sum.size(0))).sum().backward();
    std::vector<torch::Tensor> grads;
    for (const auto& [name, p] : named_parameters(*model))
      grads.push_back(p.grad());
    return std::pair{logps.token_logps.detach(), grads};
  };
  const auto [plain_logps, plain_grads] = run(false, false);
  for (bool checkpointing : {false, true}) {
    const auto [logps, grads] = run(true, checkpointing);
    EXPECT_LE((logps - plain_logps).abs().max().item<double>(), 1e-5) << checkpointing;
    ASSERT_EQ(grads.size(), plain_grads.size());
    for (size_t k = 0; k < grads.size(); ++k)
      EXPECT_LE(relative_error(grads[k], plain_grads[k]), 1e-5) << k << " " << checkpointing;
  }
  // label_logps takes the tree for this batch, which it shortens by more than a tenth.
  ASSERT_LE(10 * tree.size(), 9 * batch.input_ids.numel());
  auto model = load_causal_lm(dir);
  torch::NoGradGuard no_grad;
  TrainingSection training;
  training.logits_chunk_tokens = 16;
  const auto picked = label_logps(model, batch, training).token_logps;
  training.share_prefixes = false;
  EXPECT_LE(
      (label_logps(model, batch, training).token_logps - plain_logps).abs().max().item<double>(),
      1e-5);
  EXPECT_LE((picked - plain_logps).abs().max().item<double>(), 1e-5);
}

}  // namespace
}  // namespace flywheel
