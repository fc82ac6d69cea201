// Safetensors reading and writing (https://huggingface.co/docs/safetensors format):
//   [u64 little-endian N][N bytes JSON header][data]
// The header maps tensor names to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
// relative to the start of the data section) plus an optional "__metadata__" string map.
//
// The reader memory-maps the file and validates everything before handing out a tensor:
// header length bounds, valid JSON, known dtypes, non-negative shapes, offsets inside the
// file, offsets contiguous and non-overlapping, byte size == numel x element size. Any
// violation throws flywheel::UserError naming the file and the offending tensor.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace flywheel {

struct SafetensorsEntry {
  std::string name;
  torch::Dtype dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offset in the data section
  uint64_t end = 0;
};

class SafetensorsFile {
 public:
  // Opens and validates `path`; throws UserError on any defect.
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  // Entries in file (data offset) order.
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const;
  const SafetensorsEntry& entry(const std::string& name) const;  // UserError if absent

  // A CPU tensor that aliases the mapping (zero-copy; the mapping is copy-on-write, so writes
  // never reach the file); it keeps the
  // mapping alive even after this object is destroyed.
  torch::Tensor tensor(const std::string& name) const;

 private:
  struct Mapping;
  std::string path_;
  std::shared_ptr<Mapping> mapping_;
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// The data of tensor `index` (of the list being written), produced just before it is written,
// with the dtype and shape of the list's entry; the entries are then only placeholders (meta
// tensors will do). A model whose parameters are sharded (ZeRO-3) is written this way, one
// gathered unit at a time.
using ReadTensor = std::function<torch::Tensor(size_t index)>;

// Writes tensors (any device; contiguous copies are made as needed) to `path` in the given
// order. Written to `path + ".tmp"`, flushed, then renamed, so a reader never sees a partial
// file. Output is deterministic: the same inputs give the same bytes.
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {{"format", "pt"}},
                       const ReadTensor& read = {});

// ---- Hugging Face model directories ----

// All tensors of a model directory: `model.safetensors`, or the shards listed in
// `model.safetensors.index.json` (its weight_map; every listed tensor must be in the shard
// it names). Tensors alias the memory mappings. UserError if neither file exists.
std::map<std::string, torch::Tensor> load_safetensors_dir(const std::string& dir);

// Writes `tensors` into `dir` as `model.safetensors`, or, when their total byte size exceeds
// max_shard_bytes, as `model-0000i-of-0000n.safetensors` shards plus
// `model.safetensors.index.json` ({"metadata": {"total_size": N}, "weight_map": {...}}), the
// layout transformers' from_pretrained reads. Tensors are never split across shards.
void save_safetensors_dir(const std::string& dir,
                          const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                          uint64_t max_shard_bytes = 5'000'000'000ULL, const ReadTensor& read = {});

}  // namespace flywheel
