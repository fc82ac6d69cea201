// Intra-op thread count at start-up. Debian's LibTorch starts with one thread, so every entry
// point calls configure_threads(): $OMP_NUM_THREADS if set, else the machine's cores divided
// among the ranks on this node ($LOCAL_WORLD_SIZE, as torchrun sets it).
#pragma once

namespace flywheel {

// Returns the thread count it set.
int configure_threads();

}  // namespace flywheel
