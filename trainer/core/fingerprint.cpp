#include "trainer/core/fingerprint.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <system_error>

namespace flywheel {

Fingerprint& Fingerprint::add(uint64_t value) {
  // One round of a multiply-xorshift mix (splitmix64's finaliser) per word: order-sensitive,
  // and fast enough for a billion tokens.
  uint64_t z = state_ ^ (value + 0x9e3779b97f4a7c15ULL + (state_ << 6) + (state_ >> 2));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  state_ = z ^ (z >> 31);
  return *this;
}

Fingerprint& Fingerprint::add(const std::string& text) {
  add(static_cast<uint64_t>(text.size()));
  for (size_t i = 0; i < text.size(); i += 8) {
    uint64_t word = 0;
    for (size_t j = i; j < std::min(text.size(), i + 8); ++j)
      word = (word << 8) | static_cast<unsigned char>(text[j]);
    add(word);
  }
  return *this;
}

Fingerprint& Fingerprint::add_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto canonical = fs::weakly_canonical(path, ec);
  add(ec ? path : canonical.string());
  const auto size = fs::file_size(path, ec);
  if (ec) return *this;
  const auto mtime = fs::last_write_time(path, ec);
  if (ec) return *this;
  return add(static_cast<uint64_t>(size))
      .add(static_cast<uint64_t>(mtime.time_since_epoch().count()));
}

std::string Fingerprint::hex() const {
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(state_));
  return out;
}

}  // namespace flywheel
