// ZeRO stage 3: each rank stores 1/W of the parameters, and a part of the model is gathered
// whole only while it is used.
//
// The parameters are split into units: the embedding table, each decoder layer, and the head
// (final norm, LM or score head, and the embedding too when it is tied to the LM head). A unit
// is laid end to end and padded to W equal parts; rank r keeps part r in the parameters' dtype
// (`values`) and its optimizer state (trainer/optim/zero.h). Each parameter tensor stays
// registered with its shape, but is a view into its unit's full buffer, whose storage is freed
// while the unit is released: the autograd graph keeps referring to the same tensors, and
// finds their data again once the unit is gathered for backward.
//
// The model's forward announces each part (trainer/model/parameter_gather.h):
//   embedding   gathered before the lookup, released right after (its backward reads no weights);
//   layer i     gathered before its forward, which also starts gathering layer i + 1 (prefetch),
//               released after it; in backward an autograd node behind the layer's output
//               gathers it again (and starts on layer i - 1) before the layer's backward runs,
//               and it is released once all its parameters' gradients are in;
//   head        gathered at the final norm, released once its gradients are in (or at the
//               optimizer step, after a forward without backward).
// Gathers run on a process group of their own, so their order never interleaves with the
// gradients' reduce-scatters (GradientSync in reduce-scatter mode, one bucket per unit).
//
// Every rank must run the same forwards and backwards (the gathers are collectives): a rank
// with fewer micro-batches than the others in a step runs stand-in ones (trainer/train).
//
// The whole model never stands on a rank outside evaluation: a checkpoint is read a unit at a
// time into each rank's parts (load(); the model was built without memory, under
// DeferredParameters), and written a unit at a time on rank 0 (write_streamed()).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/dist/communicator.h"
#include "trainer/dist/grad_sync.h"
#include "trainer/model/llama.h"
#include "trainer/optim/zero.h"

namespace flywheel {

class ParameterShards final : public ParameterGather {
 public:
  // Shards `params` (the trainable parameters of `module`, which must hold a Llama decoder,
  // with their Hugging Face names) across comm's ranks. Each rank keeps its part of what it
  // holds now, so the ranks need not hold the same weights beforehand; parameters built under
  // DeferredParameters hold nothing yet, and get their values from load().
  ParameterShards(torch::nn::Module& module,
                  const std::vector<std::pair<std::string, torch::Tensor>>& params,
                  Communicator& comm);
  ~ParameterShards() override;
  ParameterShards(const ParameterShards&) = delete;
  ParameterShards& operator=(const ParameterShards&) = delete;

  int64_t num_units() const { return static_cast<int64_t>(units_.size()); }
  size_t num_parameters() const { return params_.size(); }
  // This rank's parts as optimizer segments (laid end to end in unit order), and a flat view of
  // each segment's values.
  const std::vector<ShardSegment>& segments() const { return segments_; }
  std::vector<torch::Tensor> segment_values() const;
  // The units as gradient buckets in the order backward completes them, adding into `shard`
  // (float32, laid out as segments()).
  UnitShards gradient_units(torch::Tensor shard) const;

  // Drops every gathered copy (before the optimizer changes the parts they came from).
  void release_all();
  // Each rank takes its parts of `tensors` (a checkpoint's, by Hugging Face name, any dtype,
  // on the host; checked against the model beforehand), one unit at a time: no rank ever
  // holds more than one unit whole. No communication.
  void load(const std::map<std::string, torch::Tensor>& tensors);
  // Writes the model on rank `root` a unit at a time. Every rank calls it at the same point;
  // on root, `write` runs with a BeforeWrite that gathers each parameter's unit as the writer
  // reaches it (releasing the one before), and the other ranks take part in the same gathers.
  // `write` must read the parameters in named_parameters() order, as save_pretrained does.
  using WriteWhole = std::function<void(const BeforeWrite& before)>;
  void write_streamed(int root, const WriteWhole& write);

  // Every parameter whole on rank `root` while it lives, for work one rank does alone
  // (evaluation). Every rank constructs it at the same point; a null `shards` makes it do
  // nothing, for models that are not sharded.
  class Whole {
   public:
    Whole(ParameterShards* shards, int root);
    ~Whole();
    Whole(const Whole&) = delete;
    Whole& operator=(const Whole&) = delete;

   private:
    ParameterShards* shards_;
  };

  // ParameterGather, called by the model's forward.
  void begin_embedding() override;
  void end_embedding() override;
  void begin_layer(int64_t layer) override;
  torch::Tensor end_layer(int64_t layer, const torch::Tensor& h) override;
  void begin_head() override;

  // For the autograd nodes around each layer.
  void gather_for_backward(int64_t layer);
  void release_layer(int64_t layer) { release(layer_unit(layer)); }

 private:
  struct Unit {
    std::vector<size_t> params;  // indices into params_, laid end to end in this order
    int64_t numel = 0;
    int64_t part = 0;   // ceil(numel / W): every rank's part, padded
    int64_t local = 0;  // where this rank's part starts in values_
    torch::Tensor
        full;  // [W * part]; the parameters are views into it; storage freed when released
    enum class State { kReleased, kInFlight, kGathered } state = State::kReleased;
    std::unique_ptr<PendingCollective> pending;
    size_t gradients = 0;  // of this backward so far
  };
  class GradientHook;

  size_t layer_unit(int64_t layer) const { return first_layer_ + static_cast<size_t>(layer); }
  void gather(size_t unit);  // starts it, unless gathered or on its way
  void wait(size_t unit);    // gathered, starting it if need be
  void release(size_t unit);
  void drop(size_t unit);  // release() even while pinned
  void on_gradient(size_t param);

  std::vector<torch::Tensor> params_;
  std::vector<std::string> names_;
  std::vector<size_t> unit_of_;
  std::vector<Unit> units_;
  size_t first_layer_ = 0, head_ = 0;
  bool has_embedding_unit_ = false;  // false: the tied embedding lives in the head unit
  torch::Tensor values_;             // this rank's parts, [sum of parts], the parameters' dtype
  std::vector<ShardSegment> segments_;
  std::vector<int64_t> segment_at_;   // per segment: where its values start in values_
  std::vector<int64_t> unit_local_;   // per unit: its segments' start in the segment buffers
  std::vector<int64_t> unit_length_;  // per unit: this rank's real (unpadded) elements
  Communicator& comm_;
  std::unique_ptr<Communicator> gathers_;  // a process group of its own
  LlamaModelImpl* model_ = nullptr;
  std::vector<c10::intrusive_ptr<torch::autograd::Node>> accumulators_;
  std::vector<uintptr_t> hook_keys_;
  bool pinned_ = false;  // inside a Whole on a rank that keeps everything
};

}  // namespace flywheel
