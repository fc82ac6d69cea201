#include "trainer/checkpoint/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <system_error>
#include <tuple>

#include "trainer/core/error.h"

namespace flywheel {

namespace fs = std::filesystem;

// The format stores lengths and tensor data little-endian; both the u64 header length and the
// raw tensor bytes are used as-is, so a big-endian host would need byte swapping everywhere.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes little-endian");

namespace {

// Same cap as the reference implementation: a larger header is a corrupt length field, and
// refusing it early avoids parsing (or allocating for) gigabytes of garbage.
constexpr uint64_t kMaxHeaderBytes = 100ULL << 20;

constexpr char kIndexFile[] = "model.safetensors.index.json";
constexpr char kSingleFile[] = "model.safetensors";

struct DtypeName {
  const char* name;
  torch::Dtype dtype;
};

constexpr DtypeName kDtypes[] = {
    {"F64", torch::kFloat64},   {"F32", torch::kFloat32}, {"F16", torch::kFloat16},
    {"BF16", torch::kBFloat16}, {"I64", torch::kInt64},   {"I32", torch::kInt32},
    {"I16", torch::kInt16},     {"I8", torch::kInt8},     {"U8", torch::kUInt8},
    {"BOOL", torch::kBool},
};

std::string known_dtype_list() {
  std::string out;
  for (const auto& d : kDtypes) {
    out += (out.empty() ? "" : ", ") + std::string(d.name);
  }
  return out;
}

const char* dtype_to_name(torch::Dtype dtype) {
  for (const auto& d : kDtypes) {
    if (d.dtype == dtype) return d.name;
  }
  return nullptr;
}

[[noreturn]] void invalid(const std::string& path, const std::string& what) {
  throw UserError("invalid safetensors file " + path + ": " + what);
}

[[noreturn]] void invalid_tensor(const std::string& path, const std::string& name,
                                 const std::string& what) {
  invalid(path, "tensor '" + name + "': " + what);
}

std::string errno_text() {
  return std::strerror(errno);
}

// A non-negative JSON integer as u64, or nullopt (negative, fractional, or not a number).
std::optional<uint64_t> as_u64(const nlohmann::json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    return static_cast<uint64_t>(v.get<int64_t>());
  }
  return std::nullopt;
}

SafetensorsEntry parse_entry(const std::string& path, const std::string& name,
                             const nlohmann::json& info, uint64_t data_size) {
  if (!info.is_object()) {
    invalid_tensor(path, name,
                   "expected an object with dtype, shape, data_offsets, got " + info.dump());
  }
  SafetensorsEntry e;
  e.name = name;

  const auto dtype_it = info.find("dtype");
  if (dtype_it == info.end() || !dtype_it->is_string()) {
    invalid_tensor(path, name, "missing or non-string \"dtype\"");
  }
  const std::string dtype_name = dtype_it->get<std::string>();
  const auto known = std::find_if(std::begin(kDtypes), std::end(kDtypes),
                                  [&](const DtypeName& d) { return dtype_name == d.name; });
  if (known == std::end(kDtypes)) {
    invalid_tensor(
        path, name,
        "unknown dtype '" + dtype_name + "' (expected one of " + known_dtype_list() + ")");
  }
  e.dtype = known->dtype;

  const auto shape_it = info.find("shape");
  if (shape_it == info.end() || !shape_it->is_array()) {
    invalid_tensor(path, name, "missing or non-array \"shape\"");
  }
  // numel is accumulated with overflow checks: a hostile shape must not wrap around to a small
  // product that happens to match the byte range.
  uint64_t numel = 1;
  bool overflow = false;
  for (const auto& d : *shape_it) {
    const auto dim = as_u64(d);
    if (!dim) {
      invalid_tensor(path, name,
                     "shape must be an array of non-negative integers, got " + shape_it->dump());
    }
    if (*dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) overflow = true;
    overflow = overflow || __builtin_mul_overflow(numel, *dim, &numel);
    e.shape.push_back(static_cast<int64_t>(*dim));
  }
  const uint64_t elem = c10::elementSize(e.dtype);
  uint64_t nbytes = 0;
  if (overflow || __builtin_mul_overflow(numel, elem, &nbytes)) {
    invalid_tensor(path, name, "byte size of shape " + shape_it->dump() + " overflows");
  }

  const auto offsets_it = info.find("data_offsets");
  if (offsets_it == info.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
      !as_u64((*offsets_it)[0]) || !as_u64((*offsets_it)[1])) {
    invalid_tensor(path, name,
                   "\"data_offsets\" must be two non-negative integers, got " +
                       (offsets_it == info.end() ? "nothing" : offsets_it->dump()));
  }
  e.begin = *as_u64((*offsets_it)[0]);
  e.end = *as_u64((*offsets_it)[1]);
  if (e.begin > e.end) {
    invalid_tensor(
        path, name,
        "data_offsets begin " + std::to_string(e.begin) + " > end " + std::to_string(e.end));
  }
  if (e.end > data_size) {
    invalid_tensor(path, name,
                   "data_offsets end " + std::to_string(e.end) + " is beyond the data section (" +
                       std::to_string(data_size) + " bytes; truncated file?)");
  }
  if (e.end - e.begin != nbytes) {
    invalid_tensor(path, name,
                   "data_offsets span " + std::to_string(e.end - e.begin) +
                       " bytes, which does not match " + dtype_name + " x shape " +
                       shape_it->dump() + " = " + std::to_string(nbytes) + " bytes");
  }
  return e;
}

// Writes a file under a temporary name and renames it into place on commit(), so readers see
// either the old file or the complete new one. An uncommitted file is removed on destruction.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path) : path_(std::move(path)), tmp_(path_ + ".tmp") {
    file_ = std::fopen(tmp_.c_str(), "wb");
    if (file_ == nullptr) fail("cannot create");
  }
  ~AtomicFile() {
    if (file_ != nullptr) {
      std::fclose(file_);
      std::remove(tmp_.c_str());
    }
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n) {
    if (n > 0 && std::fwrite(data, 1, n, file_) != n) fail("cannot write");
  }

  void commit() {
    if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0) fail("cannot flush");
    const int rc = std::fclose(file_);
    file_ = nullptr;
    if (rc != 0) {
      std::remove(tmp_.c_str());
      fail("cannot close");
    }
    std::error_code ec;
    fs::rename(tmp_, path_, ec);
    if (ec) {
      std::remove(tmp_.c_str());
      throw UserError("cannot rename " + tmp_ + " to " + path_ + ": " + ec.message());
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    throw UserError(what + " " + tmp_ + " (writing " + path_ + "): " + errno_text());
  }

  std::string path_;
  std::string tmp_;
  std::FILE* file_ = nullptr;
};

uint64_t tensor_nbytes(const std::string& path, const std::string& name, const torch::Tensor& t) {
  if (!t.defined()) {
    throw UserError("cannot write " + path + ": tensor '" + name + "' is undefined");
  }
  if (dtype_to_name(t.scalar_type()) == nullptr) {
    throw UserError(
        "cannot write " + path + ": tensor '" + name + "' has dtype " +
        std::string(c10::toString(t.scalar_type())) +
        ", which safetensors files here do not support (supported: " + known_dtype_list() + ")");
  }
  return static_cast<uint64_t>(t.numel()) * t.element_size();
}

// Matches the names save_safetensors_dir gives shards: model-DDDDD-of-DDDDD.safetensors.
bool is_shard_file_name(const std::string& name) {
  const std::string shape = "model-#####-of-#####.safetensors";
  if (name.size() != shape.size()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const bool ok = shape[i] == '#' ? std::isdigit(static_cast<unsigned char>(name[i])) != 0
                                    : name[i] == shape[i];
    if (!ok) return false;
  }
  return true;
}

// Removes files a previous save left behind in `dir` that the new layout does not use, so a
// directory never mixes two checkpoints.
void remove_stale(const fs::path& dir, const std::set<std::string>& keep) {
  std::error_code ec;
  // The index goes first: while it exists it must only name shards that still exist.
  if (keep.count(kIndexFile) == 0) fs::remove(dir / kIndexFile, ec);
  for (const auto& item : fs::directory_iterator(dir, ec)) {
    const std::string name = item.path().filename().string();
    const bool ours = name == kIndexFile || name == kSingleFile || is_shard_file_name(name);
    if (ours && keep.count(name) == 0) fs::remove(item.path(), ec);
  }
}

nlohmann::json read_index(const std::string& index_path) {
  std::ifstream in(index_path, std::ios::binary);
  if (!in) throw UserError("cannot open " + index_path + ": " + errno_text());
  std::stringstream buf;
  buf << in.rdbuf();
  try {
    return nlohmann::json::parse(buf.str());
  } catch (const nlohmann::json::exception& e) {
    throw UserError("invalid JSON in " + index_path + ": " + e.what());
  }
}

}  // namespace

struct SafetensorsFile::Mapping {
  void* addr = nullptr;
  size_t size = 0;
  size_t data_start = 0;  // 8 + header length, set once the header length is validated
  Mapping(void* a, size_t s) : addr(a), size(s) {}
  ~Mapping() { ::munmap(addr, size); }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
};

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw UserError("cannot open safetensors file " + path + ": " + errno_text());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const std::string err = errno_text();
    ::close(fd);
    throw UserError("cannot stat safetensors file " + path + ": " + err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    invalid(path, "not a regular file");
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    invalid(path, "file is " + std::to_string(file_size) +
                      " bytes, shorter than the 8-byte header length field");
  }
  // Copy-on-write: pages are shared with the page cache until written, so an in-place op on a
  // returned tensor costs a private copy of that page instead of a crash, and never reaches
  // the file.
  void* addr = ::mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  const std::string mmap_err = errno_text();
  ::close(fd);  // the mapping keeps the file referenced
  if (addr == MAP_FAILED) throw UserError("cannot mmap safetensors file " + path + ": " + mmap_err);
  mapping_ = std::make_shared<Mapping>(addr, file_size);
  const char* base = static_cast<const char*>(addr);

  uint64_t header_len = 0;
  std::memcpy(&header_len, base, 8);
  if (header_len > kMaxHeaderBytes) {
    invalid(path, "absurd header length " + std::to_string(header_len) + " (limit " +
                      std::to_string(kMaxHeaderBytes) + " bytes)");
  }
  if (header_len > file_size - 8) {
    invalid(path, "header length " + std::to_string(header_len) + " exceeds the " +
                      std::to_string(file_size - 8) + " bytes after the length field");
  }
  const uint64_t data_size = file_size - 8 - header_len;
  mapping_->data_start = 8 + header_len;

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(base + 8, base + 8 + header_len);
  } catch (const nlohmann::json::exception& e) {
    invalid(path, std::string("header is invalid JSON: ") + e.what());
  }
  if (!header.is_object()) invalid(path, "header is not a JSON object");

  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (value.is_null()) continue;
      if (!value.is_object()) invalid(path, "\"__metadata__\" is not an object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) {
          invalid(path, "\"__metadata__\" value for '" + mk + "' is not a string: " + mv.dump());
        }
        metadata_[mk] = mv.get<std::string>();
      }
      continue;
    }
    entries_.push_back(parse_entry(path, key, value, data_size));
  }

  std::sort(entries_.begin(), entries_.end(),
            [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
              return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
            });
  // Like the reference implementation, the tensors must tile the data section exactly: any
  // hole or overlap means the header and the data disagree.
  uint64_t cursor = 0;
  for (size_t i = 0; i < entries_.size(); ++i) {
    const auto& e = entries_[i];
    if (e.begin < cursor) {
      invalid_tensor(path, e.name,
                     "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                         ") overlaps tensor '" + entries_[i - 1].name + "' (which ends at " +
                         std::to_string(cursor) + ")");
    }
    if (e.begin > cursor) {
      invalid_tensor(path, e.name,
                     "gap of " + std::to_string(e.begin - cursor) +
                         " bytes in the data section before this tensor (expected it to begin at " +
                         std::to_string(cursor) + ")");
    }
    cursor = e.end;
    index_[e.name] = i;
  }
  if (cursor != data_size) {
    invalid(path, std::to_string(data_size - cursor) +
                      " trailing bytes in the data section after the last tensor");
  }
}

SafetensorsFile::~SafetensorsFile() = default;

bool SafetensorsFile::contains(const std::string& name) const {
  return index_.count(name) > 0;
}

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) throw UserError(path_ + " has no tensor named '" + name + "'");
  return entries_[it->second];
}

torch::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const auto& e = entry(name);
  const auto options = torch::TensorOptions().dtype(e.dtype).device(torch::kCPU);
  if (e.begin == e.end) return torch::empty(e.shape, options);

  // The data section starts right after the header, whose length need not be a multiple of the
  // element size, so the pointer can be misaligned; such tensors get an aligned copy.
  char* data = static_cast<char*>(mapping_->addr) + mapping_->data_start + e.begin;
  const size_t elem = c10::elementSize(e.dtype);
  if (reinterpret_cast<uintptr_t>(data) % elem != 0) {
    auto copy = torch::empty(e.shape, options);
    std::memcpy(copy.data_ptr(), data, e.end - e.begin);
    return copy;
  }
  // The deleter owns a reference to the mapping, so the bytes stay mapped while any tensor
  // (or view of one) is alive, however long the SafetensorsFile itself lives.
  const auto keep_mapping = [mapping = mapping_](void*) {};
  return torch::from_blob(data, e.shape, keep_mapping, options);
}

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata, const ReadTensor& read) {
  // ordered_json keeps the insertion order, so "__metadata__" comes first and tensors appear in
  // the order given: the bytes depend only on the inputs.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__" || header.contains(name)) {
      throw UserError("cannot write " + path + ": duplicate or reserved tensor name '" + name +
                      "'");
    }
    const uint64_t nbytes = tensor_nbytes(path, name, t);
    header[name] = {{"dtype", dtype_to_name(t.scalar_type())},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string header_text;
  try {
    header_text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    throw UserError("cannot write " + path + ": tensor name or metadata is not valid UTF-8 (" +
                    e.what() + ")");
  }
  // Padding the header with spaces to a multiple of 8 (as the Python library does) keeps the
  // data section 8-byte aligned in the file and hence in the reader's mapping.
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  const uint64_t header_len = header_text.size();

  AtomicFile out(path);
  out.write(&header_len, 8);
  out.write(header_text.data(), header_text.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, t] = tensors[i];
    const auto data = read ? read(i) : t;
    TORCH_CHECK(data.scalar_type() == t.scalar_type() && data.sizes() == t.sizes(),
                "the data read for tensor '", name, "' does not match its entry");
    const auto cpu = data.detach().to(torch::kCPU).contiguous();
    out.write(cpu.data_ptr(), static_cast<size_t>(cpu.numel()) * cpu.element_size());
  }
  out.commit();
}

std::map<std::string, torch::Tensor> load_safetensors_dir(const std::string& dir) {
  std::map<std::string, torch::Tensor> out;
  const fs::path root(dir);
  const std::string index_path = (root / kIndexFile).string();
  std::error_code ec;
  if (fs::exists(index_path, ec)) {
    const auto index = read_index(index_path);
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
      throw UserError(index_path + ": expected an object with a \"weight_map\" object");
    }
    std::map<std::string, std::set<std::string>> by_shard;  // shard file -> tensor names
    for (const auto& [name, file] : index["weight_map"].items()) {
      const std::string shard = file.is_string() ? file.get<std::string>() : std::string();
      // Shard names come from a downloaded file: only plain names inside `dir` are accepted.
      if (shard.empty() || shard == "." || shard == ".." ||
          shard.find_first_of(std::string("/\\\0", 3)) != std::string::npos) {
        throw UserError(index_path + ": weight_map entry for tensor '" + name +
                        "' must be a plain file name in the same directory, got " + file.dump());
      }
      by_shard[shard].insert(name);
    }
    for (const auto& [shard, names] : by_shard) {
      SafetensorsFile file((root / shard).string());
      for (const auto& name : names) {
        if (!file.contains(name)) {
          throw UserError(index_path + " lists tensor '" + name + "' in " + file.path() +
                          ", but that shard has no such tensor");
        }
      }
      for (const auto& e : file.entries()) {
        if (names.count(e.name) == 0) {
          throw UserError(file.path() + " contains tensor '" + e.name + "', which " + index_path +
                          " does not assign to this shard");
        }
        out[e.name] = file.tensor(e.name);
      }
    }
    return out;
  }
  const std::string single = (root / kSingleFile).string();
  if (!fs::exists(single, ec)) {
    throw UserError("no " + std::string(kSingleFile) + " or " + kIndexFile + " in " + dir);
  }
  SafetensorsFile file(single);
  for (const auto& e : file.entries()) {
    out[e.name] = file.tensor(e.name);
  }
  return out;
}

void save_safetensors_dir(const std::string& dir,
                          const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                          uint64_t max_shard_bytes, const ReadTensor& read) {
  const fs::path root(dir);
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) throw UserError("cannot create directory " + dir + ": " + ec.message());

  // Greedy packing in the given order; a tensor larger than the limit gets a shard of its own.
  std::vector<std::vector<std::pair<std::string, torch::Tensor>>> shards(1);
  std::vector<size_t> first{0};  // of each shard, in `tensors`
  uint64_t total = 0;
  uint64_t shard_bytes = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& item = tensors[i];
    const uint64_t nbytes = tensor_nbytes((root / kSingleFile).string(), item.first, item.second);
    if (!shards.back().empty() && shard_bytes + nbytes > max_shard_bytes) {
      shards.emplace_back();
      first.push_back(i);
      shard_bytes = 0;
    }
    shards.back().push_back(item);
    shard_bytes += nbytes;
    total += nbytes;
  }

  if (total <= max_shard_bytes) {
    write_safetensors((root / kSingleFile).string(), tensors, {{"format", "pt"}}, read);
    remove_stale(root, {kSingleFile});
    return;
  }

  std::set<std::string> written;
  nlohmann::json weight_map = nlohmann::json::object();  // keys sorted, as transformers writes
  for (size_t i = 0; i < shards.size(); ++i) {
    char name[64];
    std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    ReadTensor read_shard;
    if (read) read_shard = [&read, at = first[i]](size_t k) { return read(at + k); };
    write_safetensors((root / name).string(), shards[i], {{"format", "pt"}}, read_shard);
    written.insert(name);
    for (const auto& item : shards[i]) {
      weight_map[item.first] = name;
    }
  }
  const nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  const std::string text = index.dump(2) + "\n";
  AtomicFile out((root / kIndexFile).string());
  out.write(text.data(), text.size());
  out.commit();
  written.insert(kIndexFile);
  remove_stale(root, written);
}

}  // namespace flywheel
