// The labels convention shared by data collation and the losses.
#pragma once

#include <cstdint>

namespace flywheel {

// A labels entry that is not trained (a prompt or padding position): the value PyTorch's
// cross_entropy ignores by default and Hugging Face datasets use.
inline constexpr int64_t kIgnoreIndex = -100;

}  // namespace flywheel
