#include "trainer/data/token_store.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "trainer/core/error.h"

namespace flywheel {
namespace {

constexpr char kMagic[8] = {'F', 'W', 'T', 'O', 'K', 'E', 'N', 'S'};

// Offsets must start at 0, never decrease and end at `last`.
bool valid_offsets(const int64_t* offsets, int64_t count, int64_t last) {
  if (offsets[0] != 0 || offsets[count - 1] != last) return false;
  for (int64_t i = 1; i < count; ++i) {
    if (offsets[i] < offsets[i - 1]) return false;
  }
  return true;
}

}  // namespace

int64_t TokenView::prompt_length() const {
  const auto first = std::find(loss_mask.begin(), loss_mask.end(), 1);
  return static_cast<int64_t>(first - loss_mask.begin());
}

int64_t TokenView::loss_token_count() const {
  return std::count(loss_mask.begin(), loss_mask.end(), 1);
}

struct TokenStore::Mapping {
  void* data = MAP_FAILED;
  size_t size = 0;
  ~Mapping() {
    if (data != MAP_FAILED) munmap(data, size);
  }
};

TokenStore::TokenStore() {
  point_at_vectors();
}
TokenStore::~TokenStore() = default;
TokenStore::TokenStore(TokenStore&&) noexcept = default;
TokenStore& TokenStore::operator=(TokenStore&&) noexcept = default;

void TokenStore::point_at_vectors() {
  id_data_ = ids_.data();
  mask_data_ = mask_.data();
  sequence_data_ = sequence_offsets_.data();
  example_data_ = example_offsets_.data();
}

void TokenStore::add(const std::vector<const TokenSequence*>& sequences) {
  if (mapping_) throw std::logic_error("TokenStore::add on a memory-mapped store");
  for (const auto* s : sequences) {
    for (const auto id : s->ids)
      ids_.push_back(static_cast<int32_t>(id));
    mask_.insert(mask_.end(), s->loss_mask.begin(), s->loss_mask.end());
    sequence_offsets_.push_back(static_cast<int64_t>(ids_.size()));
  }
  example_offsets_.push_back(static_cast<int64_t>(sequence_offsets_.size()) - 1);
  ++num_examples_;
  num_tokens_ = static_cast<int64_t>(ids_.size());
  point_at_vectors();
}

int64_t TokenStore::sequences_of(int64_t example) const {
  return example_data_[example + 1] - example_data_[example];
}

TokenView TokenStore::sequence(int64_t example, int64_t k) const {
  const int64_t s = example_data_[example] + k;
  const int64_t begin = sequence_data_[s], end = sequence_data_[s + 1];
  const auto n = static_cast<size_t>(end - begin);
  return {{id_data_ + begin, n}, {mask_data_ + begin, n}};
}

std::vector<TokenView> TokenStore::sequences(const std::vector<int64_t>& examples,
                                             int64_t k) const {
  std::vector<TokenView> out;
  for (const auto e : examples)
    out.push_back(sequence(e, k));
  return out;
}

std::vector<TokenView> TokenStore::all_sequences(int64_t k) const {
  std::vector<TokenView> out;
  for (int64_t e = 0; e < num_examples_; ++e)
    out.push_back(sequence(e, k));
  return out;
}

void TokenStore::write(const std::string& path,
                       const std::map<std::string, std::string>& metadata) const {
  const int64_t S = example_data_[num_examples_];
  std::string header = nlohmann::json{
      {"examples", num_examples_},
      {"sequences", S},
      {"tokens", num_tokens_},
      {"metadata",
       metadata}}.dump();
  header.resize((header.size() + 7) / 8 * 8, ' ');
  // A temporary name of its own: ranks of several nodes may write one cache at once.
  std::string tmp = path + ".tmp-XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  std::FILE* f = fd >= 0 ? ::fdopen(fd, "wb") : nullptr;
  if (f == nullptr) throw UserError("cannot write " + tmp);
  const uint64_t header_size = header.size();
  const bool ok = std::fwrite(kMagic, 1, 8, f) == 8 && std::fwrite(&header_size, 8, 1, f) == 1 &&
                  std::fwrite(header.data(), 1, header.size(), f) == header.size() &&
                  std::fwrite(example_data_, 8, num_examples_ + 1, f) ==
                      static_cast<size_t>(num_examples_ + 1) &&
                  std::fwrite(sequence_data_, 8, S + 1, f) == static_cast<size_t>(S + 1) &&
                  std::fwrite(id_data_, 4, num_tokens_, f) == static_cast<size_t>(num_tokens_) &&
                  std::fwrite(mask_data_, 1, num_tokens_, f) == static_cast<size_t>(num_tokens_) &&
                  std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  std::fclose(f);
  if (!ok) {
    std::filesystem::remove(tmp);
    throw UserError("failed writing " + tmp);
  }
  ::chmod(tmp.c_str(), 0644);  // mkstemp makes it private; other users may share a cache
  std::filesystem::rename(tmp, path);
}

TokenStore TokenStore::open(const std::string& path) {
  const auto fail = [&](const std::string& why) -> UserError {
    return UserError(path + ": not a valid token cache (" + why + ")");
  };
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw UserError("cannot open " + path);
  struct stat st {};
  const bool stat_ok = ::fstat(fd, &st) == 0;
  TokenStore store;
  store.mapping_ = std::make_unique<Mapping>();
  auto& m = *store.mapping_;
  m.size = stat_ok ? static_cast<size_t>(st.st_size) : 0;
  if (m.size >= 16) m.data = mmap(nullptr, m.size, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (m.data == MAP_FAILED) throw fail("too short, or cannot be mapped");
  const auto* bytes = static_cast<const char*>(m.data);
  if (std::memcmp(bytes, kMagic, 8) != 0) throw fail("bad magic");
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes + 8, 8);
  if (header_size % 8 != 0 || header_size > m.size - 16) throw fail("bad header length");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes + 16, bytes + 16 + header_size);
    store.num_examples_ = header.at("examples").get<int64_t>();
    store.num_tokens_ = header.at("tokens").get<int64_t>();
    store.metadata_ = header.at("metadata").get<std::map<std::string, std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw fail(std::string("bad header: ") + e.what());
  }
  const int64_t S = header.value("sequences", int64_t{-1});
  const int64_t E = store.num_examples_, N = store.num_tokens_;
  if (E < 0 || S < 0 || N < 0 ||
      m.size != 16 + header_size + 8 * static_cast<uint64_t>(E + 1) +
                    8 * static_cast<uint64_t>(S + 1) + 5 * static_cast<uint64_t>(N)) {
    throw fail("its size does not match its header");
  }
  const char* at = bytes + 16 + header_size;
  store.example_data_ = reinterpret_cast<const int64_t*>(at);
  store.sequence_data_ = store.example_data_ + E + 1;
  store.id_data_ = reinterpret_cast<const int32_t*>(store.sequence_data_ + S + 1);
  store.mask_data_ = reinterpret_cast<const uint8_t*>(store.id_data_ + N);
  if (!valid_offsets(store.example_data_, E + 1, S) ||
      !valid_offsets(store.sequence_data_, S + 1, N)) {
    throw fail("inconsistent offsets");
  }
  return store;
}

}  // namespace flywheel
