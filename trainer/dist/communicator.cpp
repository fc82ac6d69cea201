#include "trainer/dist/communicator.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#if FLYWHEEL_WITH_CUDA
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cstdlib>
#include <functional>
#include <thread>
#include <type_traits>

#include "trainer/core/error.h"

namespace flywheel {
namespace {

class NoOpCollective final : public PendingCollective {
 public:
  void wait() override {}
};

class SingleProcess final : public Communicator {
 public:
  SingleProcess() : Communicator(WorldInfo{}, torch::kCPU) {}
  std::unique_ptr<PendingCollective> all_reduce_sum_async(torch::Tensor) override {
    return std::make_unique<NoOpCollective>();
  }
  std::unique_ptr<PendingCollective> reduce_sum_async(torch::Tensor, int) override {
    return std::make_unique<NoOpCollective>();
  }
  void broadcast(torch::Tensor, int) override {}
  void all_gather(std::vector<torch::Tensor>& out, torch::Tensor in) override {
    out.assign(1, in.clone());
  }
  std::unique_ptr<PendingCollective> all_gather_in_place_async(torch::Tensor /*full*/) override {
    return std::make_unique<NoOpCollective>();
  }
  std::unique_ptr<PendingCollective> reduce_scatter_in_place_async(
      torch::Tensor /*full*/) override {
    return std::make_unique<NoOpCollective>();
  }
  std::unique_ptr<Communicator> new_group(const std::string& /*name*/) override {
    return std::make_unique<SingleProcess>();
  }
  void barrier() override {}
};

// c10's errors carry a C++ backtrace in what(); a user needs the message alone.
std::string message_of(const std::exception& e) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
  return c10_error != nullptr ? c10_error->what_without_backtrace() : e.what();
}

std::string describe(const WorldInfo& w) {
  return "rank " + std::to_string(w.rank) + " of " + std::to_string(w.world_size) + ", store " +
         w.master_addr + ":" + std::to_string(w.master_port);
}

class C10dCollective final : public PendingCollective {
 public:
  C10dCollective(c10::intrusive_ptr<c10d::Work> work, std::string what)
      : work_(std::move(work)), what_(std::move(what)) {}
  void wait() override {
    try {
      work_->wait();
    } catch (const std::exception& e) {
      throw DistributedError(what_ + " failed (did another rank exit?): " + message_of(e));
    }
  }

 private:
  c10::intrusive_ptr<c10d::Work> work_;
  std::string what_;
};

// PG is ProcessGroupGloo or ProcessGroupNCCL, used directly as c10d Backends (no
// ProcessGroup wrapper: each communicator holds exactly one backend for one device type).
template <class PG>
class C10dCommunicator final : public Communicator {
 public:
  // `make` builds a process group of this kind on a store (new_group() calls it again).
  using MakeGroup = std::function<c10::intrusive_ptr<PG>(c10::intrusive_ptr<c10d::Store>)>;
  C10dCommunicator(WorldInfo world, torch::Device device, c10::intrusive_ptr<c10d::Store> store,
                   MakeGroup make)
      : Communicator(std::move(world), std::move(device)),
        store_(std::move(store)),
        make_(std::move(make)),
        pg_(make_(store_)) {}

  std::unique_ptr<PendingCollective> all_reduce_sum_async(torch::Tensor t) override {
    std::vector<at::Tensor> ts{std::move(t)};
    c10d::AllreduceOptions opts;
    opts.reduceOp = c10d::ReduceOp::SUM;
    return pending(pg_->allreduce(ts, opts), "all-reduce");
  }

  std::unique_ptr<PendingCollective> reduce_sum_async(torch::Tensor t, int root) override {
    std::vector<at::Tensor> ts{std::move(t)};
    c10d::ReduceOptions opts;
    opts.reduceOp = c10d::ReduceOp::SUM;
    opts.rootRank = root;
    return pending(pg_->reduce(ts, opts), "reduce");
  }

  void broadcast(torch::Tensor t, int root) override {
    std::vector<at::Tensor> ts{std::move(t)};
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    pending(pg_->broadcast(ts, opts), "broadcast")->wait();
  }

  void all_gather(std::vector<torch::Tensor>& out, torch::Tensor in) override {
    out.clear();
    for (int r = 0; r < world_size(); ++r)
      out.push_back(torch::empty_like(in));
    std::vector<std::vector<at::Tensor>> outs{out};
    std::vector<at::Tensor> ins{std::move(in)};
    pending(pg_->allgather(outs, ins), "all-gather")->wait();
  }

  // Gloo gathers into and reduce-scatters from a flat copy of the whole (its reduce-scatter is
  // an all-reduce of a clone), so on Gloo both are an all-reduce in place: the gather's other
  // parts are zeroed first, and x + 0 is x exactly. NCCL does both in place itself.
  std::unique_ptr<PendingCollective> all_gather_in_place_async(torch::Tensor full) override {
    const int64_t n = full.numel() / world_size(), r = rank();
    if constexpr (std::is_same_v<PG, c10d::ProcessGroupGloo>) {
      full.narrow(0, 0, r * n).zero_();
      full.narrow(0, (r + 1) * n, full.numel() - (r + 1) * n).zero_();
      return all_reduce_sum_async(std::move(full));
    } else {
      auto mine = full.narrow(0, r * n, n);
      return pending(pg_->all_gather_single(full, mine), "all-gather");
    }
  }

  std::unique_ptr<PendingCollective> reduce_scatter_in_place_async(torch::Tensor full) override {
    if constexpr (std::is_same_v<PG, c10d::ProcessGroupGloo>) {
      return all_reduce_sum_async(std::move(full));
    } else {
      const int64_t n = full.numel() / world_size();
      auto mine = full.narrow(0, rank() * n, n);
      c10d::ReduceScatterOptions opts;
      opts.reduceOp = c10d::ReduceOp::SUM;
      return pending(pg_->reduce_scatter_single(mine, full, opts), "reduce-scatter");
    }
  }

  std::unique_ptr<Communicator> new_group(const std::string& name) override {
    auto store = c10::make_intrusive<c10d::PrefixStore>("group/" + name, store_);
    return std::make_unique<C10dCommunicator<PG>>(world(), device(), std::move(store), make_);
  }

  void barrier() override { pending(pg_->barrier(), "barrier")->wait(); }

 private:
  std::unique_ptr<PendingCollective> pending(c10::intrusive_ptr<c10d::Work> work,
                                             const char* what) {
    return std::make_unique<C10dCollective>(std::move(work),
                                            std::string(what) + " (" + describe(world()) + ")");
  }

  c10::intrusive_ptr<c10d::Store> store_;
  MakeGroup make_;
  c10::intrusive_ptr<PG> pg_;
};

c10::intrusive_ptr<c10d::Store> make_store(const WorldInfo& w, const CommunicatorOptions& o) {
  c10d::TCPStoreOptions opts;
  opts.port = static_cast<std::uint16_t>(w.master_port);
  // Under torchrun the agent hosts the store; otherwise rank 0 does. Nobody waits inside the
  // store: the check-in below waits for all ranks the same way wherever the store lives.
  opts.isServer = !w.agent_store && w.rank == 0;
  opts.numWorkers = static_cast<std::size_t>(w.world_size);
  opts.waitWorkers = false;
  opts.timeout = o.rendezvous_timeout;
  c10::intrusive_ptr<c10d::Store> store;
  try {
    store = c10::make_intrusive<c10d::TCPStore>(w.master_addr, opts);
  } catch (const std::exception& e) {
    const std::string role = opts.isServer ? "hosting the store" : "connecting to the store";
    throw UserError("rendezvous failed: " + describe(w) + ", " + role + " for " +
                    std::to_string(o.rendezvous_timeout.count()) + " s (check MASTER_ADDR, " +
                    "MASTER_PORT and that every rank was started): " + message_of(e));
  }
  if (!w.store_prefix.empty())
    store = c10::make_intrusive<c10d::PrefixStore>(w.store_prefix, store);

  // Every rank checks in and waits until all have, or fails naming how many arrived; without
  // this a process group would wait for a missing rank for the whole collective timeout.
  const auto deadline = std::chrono::steady_clock::now() + o.rendezvous_timeout;
  const std::string key = "flywheel/joined";
  for (int64_t joined = store->add(key, 1); joined < w.world_size; joined = store->add(key, 0)) {
    if (std::chrono::steady_clock::now() > deadline) {
      throw UserError("rendezvous timed out: " + describe(w) + ": only " + std::to_string(joined) +
                      " of " + std::to_string(w.world_size) + " ranks joined within " +
                      std::to_string(o.rendezvous_timeout.count()) +
                      " s (was every rank started, with the same MASTER_ADDR and MASTER_PORT?)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return store;
}

std::unique_ptr<Communicator> gloo(const WorldInfo& w, c10::intrusive_ptr<c10d::Store> store,
                                   const CommunicatorOptions& o) {
  auto opts = c10d::ProcessGroupGloo::Options::create(o.timeout);
  // As torch.distributed does: GLOO_SOCKET_IFNAME picks the network interface, else the
  // address this host's name resolves to.
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname != nullptr && *ifname) {
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
  } else {
    opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  auto make = [rank = w.rank, size = w.world_size, opts](c10::intrusive_ptr<c10d::Store> s) {
    return c10::make_intrusive<c10d::ProcessGroupGloo>(std::move(s), rank, size, opts);
  };
  return std::make_unique<C10dCommunicator<c10d::ProcessGroupGloo>>(w, torch::kCPU,
                                                                    std::move(store), make);
}

}  // namespace

std::vector<double> Communicator::all_reduce_sum(const std::vector<double>& values) {
  if (world_size() == 1 || values.empty()) return values;
  const auto t = all_reduce_sum_cpu(torch::tensor(values, torch::kFloat64));
  return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

torch::Tensor Communicator::all_reduce_sum_cpu(const torch::Tensor& t) {
  if (world_size() == 1 || t.numel() == 0) return t;
  auto buffer = t.to(device(), /*non_blocking=*/false, /*copy=*/true).contiguous();
  all_reduce_sum(buffer);
  return buffer.cpu();
}

std::unique_ptr<Communicator> single_process_communicator() {
  return std::make_unique<SingleProcess>();
}

std::unique_ptr<Communicator> connect(const WorldInfo& world, const torch::Device& device,
                                      const CommunicatorOptions& options) {
  if (!world.distributed()) return single_process_communicator();
  auto store = make_store(world, options);
  try {
    if (device.is_cuda()) {
#if FLYWHEEL_WITH_CUDA
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = options.timeout;
      auto make = [rank = world.rank, size = world.world_size,
                   opts](c10::intrusive_ptr<c10d::Store> s) {
        return c10::make_intrusive<c10d::ProcessGroupNCCL>(std::move(s), rank, size, opts);
      };
      return std::make_unique<C10dCommunicator<c10d::ProcessGroupNCCL>>(world, device,
                                                                        std::move(store), make);
#else
      throw UserError("this build of Flywheel has no NCCL (LibTorch without CUDA)");
#endif
    }
    return gloo(world, std::move(store), options);
  } catch (const UserError&) {
    throw;
  } catch (const std::exception& e) {
    throw UserError("creating the process group failed: " + describe(world) + ": " + message_of(e));
  }
}

}  // namespace flywheel
