// Collectives between the ranks of a training job, on PyTorch's c10d: ProcessGroupGloo for CPU
// tensors, ProcessGroupNCCL for CUDA ones. A world of one is a Communicator whose collectives
// do nothing, so the trainer has one code path.
//
// This header is deliberately free of c10d includes (they are heavy to compile); the process
// groups live in communicator.cpp.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "trainer/dist/world.h"

namespace flywheel {

// A collective in flight.
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  // Blocks until done; DistributedError when it failed (e.g. a peer exited).
  virtual void wait() = 0;
};

// A collective failed or timed out: usually another rank died. Not a user error.
class DistributedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CommunicatorOptions {
  std::chrono::seconds rendezvous_timeout{300};  // all ranks must join within this
  std::chrono::seconds timeout{1800};            // any one collective
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  int rank() const { return world_.rank; }
  int world_size() const { return world_.world_size; }
  bool is_main() const { return world_.rank == 0; }
  const WorldInfo& world() const { return world_; }
  // Where collective buffers live: CPU for Gloo, the rank's GPU for NCCL.
  const torch::Device& device() const { return device_; }

  // Every rank must issue the same collectives in the same order.
  virtual std::unique_ptr<PendingCollective> all_reduce_sum_async(torch::Tensor t) = 0;
  // Sums `t` over ranks into rank `root`'s `t` (other ranks' `t` is left unspecified).
  virtual std::unique_ptr<PendingCollective> reduce_sum_async(torch::Tensor t, int root) = 0;
  virtual void broadcast(torch::Tensor t, int root) = 0;
  // out[r] = rank r's `in`; all the same shape.
  virtual void all_gather(std::vector<torch::Tensor>& out, torch::Tensor in) = 0;
  // In place on `full` [W * n], whose part r (elements [r * n, (r + 1) * n)) is rank r's:
  // all-gather leaves every rank's part in every rank's `full`; reduce-scatter leaves in part
  // `rank` the sum over ranks of their part `rank` (the other parts are left unspecified). In
  // place so that no transport allocates a second buffer of the whole (ZeRO-3's units).
  virtual std::unique_ptr<PendingCollective> all_gather_in_place_async(torch::Tensor full) = 0;
  virtual std::unique_ptr<PendingCollective> reduce_scatter_in_place_async(torch::Tensor full) = 0;
  // A second communicator over the same ranks whose collectives are ordered independently of
  // this one's (ZeRO-3 gathers parameters on one while gradients travel on the other). Every
  // rank must call it, with the same `name`.
  virtual std::unique_ptr<Communicator> new_group(const std::string& name) = 0;
  virtual void barrier() = 0;

  void all_reduce_sum(torch::Tensor t) { all_reduce_sum_async(std::move(t))->wait(); }
  // Sums doubles over ranks (metrics, counts).
  std::vector<double> all_reduce_sum(const std::vector<double>& values);
  // Sums a CPU tensor over ranks, through device() when that is a GPU; returns the sum on CPU.
  torch::Tensor all_reduce_sum_cpu(const torch::Tensor& t);

 protected:
  Communicator(WorldInfo world, torch::Device device)
      : world_(std::move(world)), device_(std::move(device)) {}

 private:
  WorldInfo world_;
  torch::Device device_;
};

// A world of one: collectives are no-ops.
std::unique_ptr<Communicator> single_process_communicator();

// Joins the job described by `world` (a single-process communicator when world_size is 1):
// a TCPStore at master_addr:master_port (hosted by rank 0, or by torchrun's agent), then a
// Gloo or NCCL process group for tensors on `device`. UserError naming host, port and rank when
// the rendezvous fails or times out.
std::unique_ptr<Communicator> connect(const WorldInfo& world, const torch::Device& device,
                                      const CommunicatorOptions& options);

}  // namespace flywheel
