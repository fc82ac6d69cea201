#include "trainer/optim/param_shards.h"

#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>
#include <regex>
#include <unordered_map>

#include "trainer/core/error.h"
#include "trainer/model/parameter_storage.h"

namespace flywheel {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Which layer a parameter name belongs to ("model.layers.3.mlp.up_proj.weight" -> 3), or -1.
int64_t layer_of(const std::string& name) {
  static const std::regex pattern(R"(^model\.layers\.(\d+)\.)");
  std::smatch m;
  return std::regex_search(name, m, pattern) ? std::stoll(m[1].str()) : -1;
}

LlamaModelImpl* find_decoder(torch::nn::Module& module) {
  for (const auto& m : module.modules()) {
    if (auto* decoder = dynamic_cast<LlamaModelImpl*>(m.get())) return decoder;
  }
  return nullptr;
}

// Each ZeRO-3 model gets a gather group of its own, named in creation order (the same on every
// rank).
int next_group_id() {
  static int id = 0;
  return id++;
}

struct LayerRef : torch::CustomClassHolder {
  LayerRef(ParameterShards* s, int64_t l) : shards(s), layer(l) {}
  ParameterShards* shards;
  int64_t layer;
};

// Behind a layer's output: identity forward (after which the layer is released); its backward
// runs before the layer's, and gathers the layer for it.
class AfterLayer : public torch::autograd::Function<AfterLayer> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const c10::intrusive_ptr<LayerRef>& ref,
                               const torch::Tensor& h) {
    ctx->saved_data["ref"] = c10::IValue::make_capsule(ref);
    ref->shards->release_layer(ref->layer);
    return h;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto ref =
        c10::static_intrusive_pointer_cast<LayerRef>(ctx->saved_data["ref"].toCapsule());
    ref->shards->gather_for_backward(ref->layer);
    return {torch::Tensor(), grad_outputs[0]};
  }
};

}  // namespace

// Counts a unit's gradients as AccumulateGrad delivers them (all of a parameter's uses in this
// backward are done by then).
class ParameterShards::GradientHook final : public torch::autograd::FunctionPostHook {
 public:
  GradientHook(ParameterShards* shards, size_t param) : shards_(shards), param_(param) {}
  variable_list operator()(const variable_list& outputs, const variable_list& /*inputs*/) override {
    shards_->on_gradient(param_);
    return outputs;
  }

 private:
  ParameterShards* shards_;
  size_t param_;
};

ParameterShards::ParameterShards(torch::nn::Module& module,
                                 const std::vector<std::pair<std::string, torch::Tensor>>& params,
                                 Communicator& comm)
    : comm_(comm),
      gathers_(comm.new_group("zero3-" + std::to_string(next_group_id()))),
      model_(find_decoder(module)) {
  if (model_ == nullptr) throw UserError("distributed.zero_stage 3 needs a Llama-family model");
  TORCH_CHECK(!params.empty(), "ZeRO-3 with no trainable parameters");
  const auto dtype = params.front().second.scalar_type();
  const auto device = params.front().second.device();
  // Units: [embedding], layers 0..L-1, head (everything else, and a tied embedding).
  const int64_t L = model_->config().num_hidden_layers;
  const bool tied = model_->config().tie_word_embeddings;
  const std::string embedding = "model.embed_tokens.weight";
  has_embedding_unit_ = !tied && std::any_of(params.begin(), params.end(),
                                             [&](const auto& p) { return p.first == embedding; });
  first_layer_ = has_embedding_unit_ ? 1 : 0;
  head_ = first_layer_ + static_cast<size_t>(L);
  units_.resize(head_ + 1);
  const bool deferred = storage_released(params.front().second);
  for (size_t k = 0; k < params.size(); ++k) {
    const auto& [name, p] = params[k];
    TORCH_CHECK(storage_released(p) == deferred,
                "ZeRO-3 needs every parameter built deferred, or none: ", name);
    TORCH_CHECK(p.scalar_type() == dtype && p.device() == device,
                "ZeRO-3 needs parameters of one dtype on one device: ", name);
    const int64_t layer = layer_of(name);
    size_t unit = head_;
    if (has_embedding_unit_ && name == embedding) unit = 0;
    if (layer >= 0 && layer < L) unit = layer_unit(layer);
    params_.push_back(p);
    names_.push_back(name);
    unit_of_.push_back(unit);
    units_[unit].params.push_back(k);
  }

  // This rank's part of each unit, then each parameter becomes a view into its unit's buffer.
  const int64_t W = comm.world_size(), r = comm.rank();
  int64_t total_parts = 0;
  for (auto& u : units_) {
    for (auto k : u.params)
      u.numel += params_[k].numel();
    u.part = (u.numel + W - 1) / W;
    u.local = total_parts;
    total_parts += u.part;
  }
  const auto options = torch::TensorOptions().dtype(dtype).device(device);
  values_ = torch::zeros({total_parts}, options);
  torch::NoGradGuard no_grad;
  int64_t segment_local = 0;
  for (auto& u : units_) {
    // Zeros: the padding of the last part is summed and gathered like the rest.
    u.full = torch::zeros({W * u.part}, options);
    const int64_t mine = r * u.part, mine_end = std::min(u.numel, mine + u.part);
    unit_local_.push_back(segment_local);
    unit_length_.push_back(std::max<int64_t>(0, mine_end - mine));
    int64_t at = 0;  // of the parameter in the unit
    for (auto k : u.params) {
      auto& p = params_[k];
      const int64_t n = p.numel();
      auto view = u.full.narrow(0, at, n).view(p.sizes());
      if (!deferred) view.copy_(p.detach());
      // The part of this parameter that falls in this rank's part of the unit.
      const int64_t lo = std::max(at, mine), hi = std::min(at + n, mine_end);
      if (lo < hi) {
        segments_.push_back({k, lo - at, hi - lo, segment_local});
        segment_at_.push_back(u.local + (lo - mine));
        segment_local += hi - lo;
      }
      p.set_data(view);
      at += n;
    }
    values_.narrow(0, u.local, u.part).copy_(u.full.narrow(0, r * u.part, u.part));
    release_storage(u.full);
  }
  for (size_t k = 0; k < params_.size(); ++k) {
    auto acc = torch::autograd::impl::grad_accumulator(params_[k]);
    hook_keys_.push_back(acc->add_post_hook(std::make_unique<GradientHook>(this, k)));
    accumulators_.push_back(std::move(acc));
  }
  model_->parameter_gather = this;
}

ParameterShards::~ParameterShards() {
  if (model_ != nullptr && model_->parameter_gather == this) model_->parameter_gather = nullptr;
  for (size_t k = 0; k < accumulators_.size(); ++k)
    accumulators_[k]->del_post_hook(hook_keys_[k]);
  for (auto& u : units_) {
    if (u.pending) u.pending->wait();
  }
}

std::vector<torch::Tensor> ParameterShards::segment_values() const {
  std::vector<torch::Tensor> out;
  for (size_t s = 0; s < segments_.size(); ++s)
    out.push_back(values_.narrow(0, segment_at_[s], segments_[s].length));
  return out;
}

UnitShards ParameterShards::gradient_units(torch::Tensor shard) const {
  UnitShards out;
  out.shard = std::move(shard);
  for (size_t u = units_.size(); u-- > 0;) {  // head, last layer, ..., embedding
    out.units.push_back(units_[u].params);
    out.offset.push_back(unit_local_[u]);
    out.length.push_back(unit_length_[u]);
  }
  return out;
}

void ParameterShards::gather(size_t unit) {
  auto& u = units_[unit];
  if (u.state != Unit::State::kReleased) return;
  restore_storage(u.full);
  {
    torch::NoGradGuard no_grad;
    u.full.narrow(0, comm_.rank() * u.part, u.part).copy_(values_.narrow(0, u.local, u.part));
  }
  u.pending = gathers_->all_gather_in_place_async(u.full);
  u.state = Unit::State::kInFlight;
}

void ParameterShards::wait(size_t unit) {
  gather(unit);
  auto& u = units_[unit];
  if (u.state == Unit::State::kInFlight) {
    u.pending->wait();
    u.pending.reset();
    u.state = Unit::State::kGathered;
  }
}

void ParameterShards::release(size_t unit) {
  if (!pinned_) drop(unit);
}

void ParameterShards::drop(size_t unit) {
  auto& u = units_[unit];
  if (u.state == Unit::State::kReleased) return;
  if (u.pending) u.pending->wait();
  u.pending.reset();
  release_storage(u.full);
  u.state = Unit::State::kReleased;
}

void ParameterShards::release_all() {
  for (size_t u = 0; u < units_.size(); ++u) {
    drop(u);
    units_[u].gradients = 0;
  }
}

void ParameterShards::load(const std::map<std::string, torch::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  release_all();
  const int64_t r = comm_.rank();
  for (auto& u : units_) {
    restore_storage(u.full);
    u.full.narrow(0, u.numel, u.full.numel() - u.numel).zero_();  // the padding
    for (auto k : u.params)
      params_[k].copy_(tensors.at(names_[k]));
    values_.narrow(0, u.local, u.part).copy_(u.full.narrow(0, r * u.part, u.part));
    release_storage(u.full);
  }
}

void ParameterShards::write_streamed(int root, const WriteWhole& write) {
  release_all();
  std::unordered_map<const c10::TensorImpl*, size_t> index;
  for (size_t k = 0; k < params_.size(); ++k)
    index[params_[k].unsafeGetTensorImpl()] = k;
  size_t current = units_.size(), next = 0;
  const auto visit = [&](size_t k) {
    if (unit_of_[k] == current) return;
    if (current < units_.size()) drop(current);
    current = unit_of_[k];
    wait(current);
  };
  if (comm_.rank() == root) {
    write([&](const torch::Tensor& p) {
      const auto it = index.find(p.unsafeGetTensorImpl());
      if (it == index.end()) return;  // not trained, hence not sharded
      TORCH_CHECK(it->second == next, "ZeRO-3: the model writer read '", names_[it->second],
                  "' out of order");
      visit(next++);
    });
    TORCH_CHECK(next == params_.size(), "ZeRO-3: the model writer left parameters unread");
  } else {
    for (size_t k = 0; k < params_.size(); ++k)
      visit(k);
  }
  if (current < units_.size()) drop(current);
}

ParameterShards::Whole::Whole(ParameterShards* shards, int root) : shards_(shards) {
  if (shards_ == nullptr) return;
  const bool keep = shards_->comm_.rank() == root;
  for (size_t u = 0; u < shards_->units_.size(); ++u) {
    shards_->wait(u);
    if (!keep) shards_->drop(u);
  }
  shards_->pinned_ = keep;
}

ParameterShards::Whole::~Whole() {
  if (shards_ == nullptr) return;
  shards_->pinned_ = false;
  shards_->release_all();
}

void ParameterShards::begin_embedding() {
  if (!has_embedding_unit_) {
    wait(head_);  // the tied table
  } else {
    wait(0);
  }
  gather(first_layer_);
}

void ParameterShards::end_embedding() {
  if (has_embedding_unit_) release(0);
}

void ParameterShards::begin_layer(int64_t layer) {
  wait(layer_unit(layer));
  gather(layer_unit(layer) + 1);  // the next layer, or the head
}

torch::Tensor ParameterShards::end_layer(int64_t layer, const torch::Tensor& h) {
  return AfterLayer::apply(c10::make_intrusive<LayerRef>(this, layer), h);
}

void ParameterShards::begin_head() {
  wait(head_);
}

void ParameterShards::gather_for_backward(int64_t layer) {
  wait(layer_unit(layer));
  if (layer > 0) gather(layer_unit(layer - 1));
}

void ParameterShards::on_gradient(size_t param) {
  auto& u = units_[unit_of_[param]];
  if (++u.gradients < u.params.size()) return;
  u.gradients = 0;
  release(unit_of_[param]);
}

}  // namespace flywheel
