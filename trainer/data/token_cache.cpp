#include "trainer/data/token_cache.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>
#include <vector>

#include "trainer/core/error.h"
#include "trainer/core/fingerprint.h"

namespace flywheel {
namespace {

namespace fs = std::filesystem;

// Bumped whenever tokenization or the file layout changes, so old caches are not reused.
constexpr const char* kCacheVersion = "2";  // 2: tokenizer.json backends, HF special tokens

const char* kind_name(ExampleKind kind) {
  switch (kind) {
    case ExampleKind::kSft:
      return "sft";
    case ExampleKind::kPreference:
      return "pairs";
    case ExampleKind::kRanking:
      return "rankings";
  }
  return "";
}

std::string cache_key(ExampleKind kind, const std::string& path, const DataOptions& options,
                      const std::string& tokenizer_dir) {
  Fingerprint f;
  f.add(kCacheVersion).add(kind_name(kind)).add_file(path);
  // Every file a tokenizer may be read from, present or not.
  for (const char* name : {"tokenizer.model", "tokenizer.json", "tokenizer_config.json",
                           "chat_template.jinja", "special_tokens_map.json", "config.json"}) {
    f.add_file((fs::path(tokenizer_dir) / name).string());
  }
  f.add(options.chat_template)
      .add(static_cast<uint64_t>(options.max_length))
      .add(options.overlong)
      .add(static_cast<uint64_t>(options.skip_invalid))
      .add(static_cast<uint64_t>(options.add_bos));
  return f.hex();
}

std::map<std::string, std::string> stats_metadata(const DataStats& s) {
  return {{"records", std::to_string(s.records)},
          {"examples", std::to_string(s.examples)},
          {"truncated", std::to_string(s.truncated)},
          {"dropped_overlong", std::to_string(s.dropped_overlong)},
          {"skipped_invalid", std::to_string(s.skipped_invalid)},
          {"first_invalid", s.first_invalid}};
}

DataStats stats_from(const std::map<std::string, std::string>& m, const std::string& where) {
  const auto number = [&](const char* key) {
    const auto it = m.find(key);
    if (it == m.end()) throw UserError(where + ": not a valid token cache (no '" + key + "')");
    return std::stoll(it->second);
  };
  DataStats s;
  s.records = number("records");
  s.examples = number("examples");
  s.truncated = number("truncated");
  s.dropped_overlong = number("dropped_overlong");
  s.skipped_invalid = number("skipped_invalid");
  const auto it = m.find("first_invalid");
  if (it != m.end()) s.first_invalid = it->second;
  return s;
}

}  // namespace

std::string default_token_cache_dir() {
  if (const char* dir = std::getenv("FLYWHEEL_CACHE_DIR"); dir != nullptr && *dir != '\0') {
    return (fs::path(dir) / "tokens").string();
  }
  if (const char* dir = std::getenv("XDG_CACHE_HOME"); dir != nullptr && *dir != '\0') {
    return (fs::path(dir) / "flywheel" / "tokens").string();
  }
  const char* home = std::getenv("HOME");
  return (fs::path(home != nullptr ? home : "/tmp") / ".cache" / "flywheel" / "tokens").string();
}

LoadedTokens load_tokens(ExampleKind kind, const std::string& path, const Tokenizer& tokenizer,
                         const DataOptions& options, const TokenCacheOptions& cache) {
  LoadedTokens out;
  std::string file, note;
  const auto key = cache_key(kind, path, options, cache.tokenizer_dir);
  if (!cache.dir.empty()) {
    file = (fs::path(cache.dir) /
            (fs::path(path).filename().string() + "-" + kind_name(kind) + "-" + key + ".tokens"))
               .string();
    if (fs::exists(file)) {
      try {
        auto store = TokenStore::open(file);
        if (store.metadata().count("key") && store.metadata().at("key") == key) {
          out.stats = stats_from(store.metadata(), file);
          out.store = std::move(store);
          out.report = path + ": " + out.stats.summary() + "; " +
                       std::to_string(out.store.tokens()) + " tokens from cache " + file;
          return out;
        }
        note = "; " + file + " was made from other inputs, replaced";
      } catch (const UserError& e) {
        note = std::string("; ") + e.what() + ", made again";
      }
    }
  }
  const auto start = std::chrono::steady_clock::now();
  load_examples_into(kind, path, tokenizer, options, cache.threads, &out.stats, &out.store);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  char rate[160];
  std::snprintf(rate, sizeof rate, "; tokenized %lld tokens in %.2f s (%.0f tokens/s, %d threads)",
                static_cast<long long>(out.store.tokens()), seconds,
                static_cast<double>(out.store.tokens()) / std::max(seconds, 1e-9), cache.threads);
  out.report = path + ": " + out.stats.summary() + rate + note;
  if (file.empty()) return out;
  std::error_code ec;
  fs::create_directories(cache.dir, ec);
  if (ec) {
    throw UserError("data.cache_dir: cannot create " + cache.dir + " (" + ec.message() +
                    "); set another cache_dir, or data.token_cache: false");
  }
  auto metadata = stats_metadata(out.stats);
  metadata["key"] = key;
  metadata["source"] = path;
  out.store.write(file, metadata);
  out.store = TokenStore::open(file);  // the in-memory copy goes; every rank shares the file's
  out.report += ", cached in " + file;
  return out;
}

}  // namespace flywheel
