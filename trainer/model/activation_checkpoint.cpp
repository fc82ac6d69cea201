#include "trainer/model/activation_checkpoint.h"

#include <ATen/core/Generator.h>
#include <torch/csrc/autograd/custom_function.h>

#include <mutex>

namespace flywheel {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What backward needs besides x, carried in the context as a capsule.
struct Replay : torch::CustomClassHolder {
  std::function<torch::Tensor(const torch::Tensor&)> block;
  std::vector<torch::Tensor> params;
  torch::Tensor rng_state;  // of the input's device, at the forward
};

torch::Tensor rng_state(const torch::Device& device) {
  auto gen = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void set_rng_state(const torch::Device& device, const torch::Tensor& state) {
  auto gen = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

class Checkpoint : public torch::autograd::Function<Checkpoint> {
 public:
  // Runs with gradients off (Function::apply sees to it), so nothing of the block is recorded.
  // `params` is an input only so that the graph routes their gradients.
  static torch::Tensor forward(AutogradContext* ctx, const c10::intrusive_ptr<Replay>& replay,
                               const torch::Tensor& x, torch::TensorList /*params*/) {
    replay->rng_state = rng_state(x.device());
    ctx->saved_data["replay"] = c10::IValue::make_capsule(replay);
    ctx->save_for_backward({x});
    return replay->block(x);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto replay =
        c10::static_intrusive_pointer_cast<Replay>(ctx->saved_data["replay"].toCapsule());
    const auto x = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    // The forward's random numbers again; the caller's generator then continues untouched.
    const auto device = x.device();
    const auto now = rng_state(device);
    set_rng_state(device, replay->rng_state);
    torch::Tensor out;
    {
      torch::AutoGradMode enable(true);
      out = replay->block(x);
    }
    set_rng_state(device, now);
    variable_list inputs = {x};
    inputs.insert(inputs.end(), replay->params.begin(), replay->params.end());
    auto grads = torch::autograd::grad({out}, inputs, {grad_outputs[0]}, /*retain_graph=*/false,
                                       /*create_graph=*/false, /*allow_unused=*/true);
    // One gradient per forward input: none for the replay, then x's, then each parameter's.
    variable_list result = {torch::Tensor()};
    result.insert(result.end(), grads.begin(), grads.end());
    return result;
  }
};

}  // namespace

torch::Tensor checkpointed(std::function<torch::Tensor(const torch::Tensor&)> block,
                           const torch::Tensor& x, const std::vector<torch::Tensor>& params) {
  auto replay = c10::make_intrusive<Replay>();
  replay->block = std::move(block);
  replay->params = params;
  return Checkpoint::apply(replay, x, torch::TensorList(params));
}

}  // namespace flywheel
