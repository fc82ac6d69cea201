// Process-wide settings every entry point applies at start-up, through configure_runtime().
//
// Threads: Debian's LibTorch starts with one intra-op thread, so we set $OMP_NUM_THREADS if
// given, else the machine's cores divided among the ranks on this node (trainer/world.h:
// LOCAL_WORLD_SIZE as torchrun sets it, or Slurm's tasks per node).
//
// Host allocator: a training step allocates and frees the same large activation buffers every
// step. With glibc's defaults, many of them are mmap'ed and unmapped each time, and memory at
// the top of the heap is trimmed back to the kernel, so every step pays page faults on fresh
// pages. On the 2-core VM we develop on that was 850k faults in 23 steps of stories260K DPO and
// a step 3x slower than with buffers reused (bench/README.md). We keep freed memory in the
// process instead, as PyTorch's CUDA caching allocator does on the GPU.
#pragma once

namespace flywheel {

// Applies both settings; returns the intra-op thread count it set.
int configure_runtime();

}  // namespace flywheel
