// Process-wide settings every entry point applies at start-up, through configure_runtime().
//
// Threads: $OMP_NUM_THREADS if given, else the machine's cores divided among the ranks on this
// node (trainer/dist/world.h: LOCAL_WORLD_SIZE as torchrun sets it, or Slurm's tasks per node), so
// ranks sharing a node never oversubscribe it whatever LibTorch's own default is.
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
