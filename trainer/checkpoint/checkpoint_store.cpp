#include "trainer/checkpoint/checkpoint_store.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "trainer/core/error.h"

namespace flywheel {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kManifest = "manifest.json";

// CRC-32 and size of a file, streamed.
std::pair<uint32_t, uint64_t> crc_of(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UserError("cannot read " + path.string());
  std::vector<char> buf(1 << 20);
  uLong crc = crc32(0L, Z_NULL, 0);
  uint64_t size = 0;
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto n = in.gcount();
    if (n <= 0) break;
    crc = crc32(crc, reinterpret_cast<const Bytef*>(buf.data()), static_cast<uInt>(n));
    size += static_cast<uint64_t>(n);
  }
  return {static_cast<uint32_t>(crc), size};
}

void fsync_path(const fs::path& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

std::string verify_manifest(const std::string& dir) {
  const fs::path manifest = fs::path(dir) / kManifest;
  if (!fs::exists(manifest)) return "no manifest.json (incomplete checkpoint)";
  std::ifstream in(manifest);
  const json m = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (m.is_discarded() || !m.is_object() || !m.contains("files") || !m["files"].is_object()) {
    return "manifest.json is not valid";
  }
  for (const auto& [name, entry] : m["files"].items()) {
    const fs::path rel(name);
    if (rel.is_absolute() || name.find("..") != std::string::npos) {
      return "manifest entry '" + name + "' escapes the checkpoint";
    }
    const fs::path file = fs::path(dir) / rel;
    if (!fs::is_regular_file(file)) return "missing file " + name;
    if (!entry.is_object() || !entry.contains("size") || !entry.contains("crc32")) {
      return "manifest entry '" + name + "' is malformed";
    }
    const auto [crc, size] = crc_of(file);
    if (size != entry["size"].get<uint64_t>()) return "file " + name + " has the wrong size";
    if (crc != entry["crc32"].get<uint32_t>()) return "file " + name + " fails its checksum";
  }
  return "";
}

std::string checkpoint_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%08lld", static_cast<long long>(step));
  return buf;
}

CheckpointStore::CheckpointStore(std::string root, int64_t keep_last)
    : root_(std::move(root)), keep_last_(keep_last) {}

std::string CheckpointStore::save(int64_t step,
                                  const std::function<void(const std::string&)>& write) const {
  write(begin(step));
  return commit(step);
}

std::string CheckpointStore::staging_dir(int64_t step) const {
  return (fs::path(root_) / (checkpoint_name(step) + ".tmp")).string();
}

std::string CheckpointStore::begin(int64_t step) const {
  const fs::path tmp = staging_dir(step);
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  return tmp.string();
}

std::string CheckpointStore::commit(int64_t step) const {
  const fs::path final_dir = fs::path(root_) / checkpoint_name(step);
  const fs::path tmp = staging_dir(step);
  json files = json::object();
  for (const auto& e : fs::recursive_directory_iterator(tmp)) {
    if (!e.is_regular_file()) continue;
    const auto [crc, size] = crc_of(e.path());
    files[fs::relative(e.path(), tmp).string()] = {{"size", size}, {"crc32", crc}};
    fsync_path(e.path(), false);
  }
  {
    std::ofstream out(tmp / kManifest);
    out << json{{"step", step}, {"files", files}}.dump(2) << "\n";
    if (!out.flush()) throw UserError("cannot write " + (tmp / kManifest).string());
  }
  fsync_path(tmp / kManifest, false);
  fsync_path(tmp, true);
  fs::remove_all(final_dir);  // a previous run's checkpoint of the same step
  fs::rename(tmp, final_dir);
  fsync_path(root_, true);

  prune();
  return final_dir.string();
}

void CheckpointStore::keep(std::optional<int64_t> step) {
  kept_ = step;
  prune();
}

void CheckpointStore::prune() const {
  auto all = list();
  for (size_t i = 0; i + static_cast<size_t>(keep_last_) < all.size(); ++i) {
    if (all[i].step != kept_) fs::remove_all(all[i].dir);
  }
}

std::vector<CheckpointRef> CheckpointStore::list() const {
  std::vector<CheckpointRef> out;
  if (!fs::is_directory(root_)) return out;
  for (const auto& e : fs::directory_iterator(root_)) {
    const auto name = e.path().filename().string();
    long long step = 0;
    char tail = 0;
    if (e.is_directory() && std::sscanf(name.c_str(), "step-%lld%c", &step, &tail) == 1) {
      out.push_back({step, e.path().string()});
    }
  }
  std::sort(out.begin(), out.end(),
            [](const CheckpointRef& a, const CheckpointRef& b) { return a.step < b.step; });
  return out;
}

std::optional<CheckpointRef> CheckpointStore::find(int64_t step) const {
  const fs::path dir = fs::path(root_) / checkpoint_name(step);
  if (!fs::is_directory(dir) || !verify_manifest(dir.string()).empty()) return std::nullopt;
  return CheckpointRef{step, dir.string()};
}

std::optional<CheckpointRef> CheckpointStore::latest_valid(
    std::vector<std::string>* problems) const {
  auto all = list();
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    const auto problem = verify_manifest(it->dir);
    if (problem.empty()) return *it;
    problems->push_back(it->dir + ": " + problem);
  }
  return std::nullopt;
}

}  // namespace flywheel
