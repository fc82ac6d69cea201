// Atomic, verified training checkpoints under one directory:
//   ROOT/step-00000010/   files written by the caller + manifest.json
// A checkpoint is written into ROOT/step-XXXXXXXX.tmp, its manifest (every file's size and
// CRC-32) is written last, everything is fsync'ed, and only then is the directory renamed into
// place. A reader trusts a checkpoint only if its manifest verifies, so a crash mid-write or a
// damaged file is detected and the previous checkpoint used instead.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace flywheel {

// "step-00000010": checkpoint `step`'s directory name under ROOT.
std::string checkpoint_name(int64_t step);

struct CheckpointRef {
  int64_t step;
  std::string dir;
};

class CheckpointStore {
 public:
  CheckpointStore(std::string root, int64_t keep_last);

  // Calls write(dir) on a fresh temporary directory, seals it and renames it into place, then
  // removes the oldest checkpoints beyond keep_last (but the one keep() names). Returns the
  // final directory.
  std::string save(int64_t step, const std::function<void(const std::string& dir)>& write) const;
  // save() in two halves, for writers in several processes: begin() makes the fresh temporary
  // directory and returns it; once every file is in it, commit() seals and renames it.
  std::string begin(int64_t step) const;
  std::string staging_dir(int64_t step) const;  // what begin() returns, without creating it
  std::string commit(int64_t step) const;

  // The checkpoint of `step` if it exists and its manifest verifies.
  std::optional<CheckpointRef> find(int64_t step) const;

  // The newest checkpoint whose manifest verifies. Each newer one that fails is described in
  // `problems` ("DIR: what is wrong").
  std::optional<CheckpointRef> latest_valid(std::vector<std::string>* problems) const;

  // All sealed checkpoint directories (verified or not), oldest first.
  std::vector<CheckpointRef> list() const;

  // Keeps checkpoint `step` whatever its age (a best-rated one), or nothing when nullopt; the
  // checkpoints beyond it and the last keep_last are removed now.
  void keep(std::optional<int64_t> step);

 private:
  void prune() const;

  std::string root_;
  int64_t keep_last_;
  std::optional<int64_t> kept_;
};

// "" when every file listed in DIR/manifest.json exists with its size and CRC-32 (and no
// manifest entry escapes DIR); otherwise what is wrong.
std::string verify_manifest(const std::string& dir);

}  // namespace flywheel
