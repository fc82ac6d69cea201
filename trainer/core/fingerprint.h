// A 64-bit fingerprint of whatever a cached result depends on (token arrays, settings, files),
// to tell a stale cache from a valid one. Not cryptographic: it guards against mistakes
// (a changed data file, another max_length), not against an adversary.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace flywheel {

class Fingerprint {
 public:
  Fingerprint& add(uint64_t value);
  Fingerprint& add(const std::string& text);
  template <typename T>
  Fingerprint& add(const std::vector<T>& values) {
    add(static_cast<uint64_t>(values.size()));
    for (const auto& v : values)
      add(static_cast<uint64_t>(v));
    return *this;
  }
  // A file's identity without reading it: its canonical path, size and modification time
  // (what make and ccache trust). A missing file adds its path alone.
  Fingerprint& add_file(const std::string& path);

  uint64_t value() const { return state_; }
  std::string hex() const;  // 16 hex digits

 private:
  uint64_t state_ = 0x9e3779b97f4a7c15ULL;
};

}  // namespace flywheel
