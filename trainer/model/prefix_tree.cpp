#include "trainer/model/prefix_tree.h"

#include <unordered_map>
#include <vector>

namespace flywheel {

torch::Tensor PrefixTree::to_rows(const torch::Tensor& hidden) const {
  TORCH_CHECK(hidden.dim() == 3 && hidden.size(0) == 1 && hidden.size(1) == size(),
              "PrefixTree: hidden must be [1, N = ", size(), ", C], got ", hidden.sizes());
  return hidden[0].index_select(0, nodes).view({rows, length, hidden.size(2)});
}

PrefixTree prefix_tree(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
  TORCH_CHECK(input_ids.dim() == 2 && attention_mask.sizes() == input_ids.sizes(),
              "prefix_tree: input_ids and attention_mask must be [R, T] alike, got ",
              input_ids.sizes(), " and ", attention_mask.sizes());
  const auto ids = input_ids.to(torch::kCPU, torch::kInt64).contiguous();
  const auto mask = attention_mask.to(torch::kCPU, torch::kInt64).contiguous();
  const int64_t R = ids.size(0), T = ids.size(1);
  const auto* id = ids.data_ptr<int64_t>();
  const auto* real = mask.data_ptr<int64_t>();
  // A node is its parent node and its token: (parent + 1) << 32 | token, the root's children
  // having parent -1.
  std::unordered_map<uint64_t, int64_t> children;
  children.reserve(static_cast<size_t>(R * T));
  std::vector<int64_t> tokens, positions, first, nodes(static_cast<size_t>(R * T), 0);
  for (int64_t r = 0; r < R; ++r) {
    int64_t parent = -1;
    for (int64_t t = 0; t < T && real[r * T + t] != 0; ++t) {
      const int64_t token = id[r * T + t];
      TORCH_CHECK(token >= 0 && token <= UINT32_MAX, "prefix_tree: token ", token, " out of range");
      const uint64_t key = static_cast<uint64_t>(parent + 1) << 32 | static_cast<uint64_t>(token);
      const auto [it, added] = children.try_emplace(key, std::ssize(tokens));
      if (added) {
        tokens.push_back(token);
        positions.push_back(t);
        first.push_back(r * T + t);
      }
      parent = it->second;
      nodes[static_cast<size_t>(r * T + t)] = parent;
    }
  }
  TORCH_CHECK(!tokens.empty(), "prefix_tree: the batch has no tokens");
  const auto on_device = [&](std::vector<int64_t>& v) {
    return torch::tensor(v, torch::kInt64).to(input_ids.device());
  };
  PrefixTree tree;
  tree.tokens = on_device(tokens).unsqueeze(0);
  tree.positions = on_device(positions).unsqueeze(0);
  tree.nodes = on_device(nodes);
  tree.first = on_device(first);
  tree.rows = R;
  tree.length = T;
  return tree;
}

torch::Tensor PrefixTreeAttention::attend(int64_t, const torch::Tensor& q, const torch::Tensor& k,
                                          const torch::Tensor& v, const torch::Tensor&) {
  const int64_t R = tree_.rows, T = tree_.length, D = q.size(3);
  // [1, X, N, D] -> [R, X, T, D]: each row's nodes in its positions.
  const auto rows = [&](const torch::Tensor& x) {
    return x[0].index_select(1, tree_.nodes).view({x.size(1), R, T, D}).transpose(0, 1);
  };
  // Right padding after each row's tokens: plain causal attention never lets a real token see it.
  const auto out = grouped_attention(rows(q), rows(k), rows(v), {});  // [R, H, T, D]
  return out.transpose(0, 1)
      .reshape({q.size(1), R * T, D})
      .index_select(1, tree_.first)
      .unsqueeze(0);
}

}  // namespace flywheel
