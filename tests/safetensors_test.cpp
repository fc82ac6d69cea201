#include "trainer/checkpoint/safetensors.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "tests/fixtures.h"
#include "trainer/core/error.h"

namespace {

namespace fs = std::filesystem;
using flywheel::SafetensorsFile;
using flywheel::UserError;
using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// A fresh temporary directory, removed with everything in it when the test ends.
struct TempDir {
  explicit TempDir(const std::string& tag) : path(flywheel::testing::make_temp_dir(tag)) {}
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string path;
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A hand-assembled file: u64 little-endian `header_len`, the header text, then `data_bytes`
// bytes of data. header_len is separate from the header so tests can lie about it.
std::string raw_file(uint64_t header_len, const std::string& header, size_t data_bytes) {
  std::string out(reinterpret_cast<const char*>(&header_len), 8);
  out += header;
  out.append(data_bytes, '\x01');
  return out;
}

std::string raw_file(const std::string& header, size_t data_bytes) {
  return raw_file(header.size(), header, data_bytes);
}

// Bitwise equality (torch::equal treats NaN != NaN and -0 == +0).
bool same_bits(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  const auto ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.numel() * ca.element_size()) == 0;
}

// Runs `fn`, which must throw UserError whose message contains every string in `expected`.
void expect_user_error(const std::function<void()>& fn, const std::vector<std::string>& expected,
                       const std::string& label) {
  try {
    fn();
    ADD_FAILURE() << label << ": no UserError thrown";
  } catch (const UserError& e) {
    const std::string msg = e.what();
    for (const auto& want : expected) {
      EXPECT_NE(msg.find(want), std::string::npos)
          << label << ": message lacks \"" << want << "\": " << msg;
    }
  }
}

NamedTensors all_dtypes_tensors() {
  torch::manual_seed(0);
  return {
      {"f32", torch::randn({2, 3})},
      {"bf16", torch::randn({3}).to(torch::kBFloat16)},  // 6 bytes: misaligns what follows
      {"f32_after_bf16", torch::randn({5})},
      {"f16", torch::randn({2, 2}).to(torch::kFloat16)},
      {"i64", torch::arange(-3, 4, torch::kInt64)},
      {"empty", torch::zeros({0, 5})},
      {"scalar", torch::tensor(3.5f).reshape({})},
      {"f64", torch::randn({3}, torch::kFloat64)},
      {"i32", torch::randint(-1000, 1000, {4}, torch::kInt32)},
      {"i16", torch::randint(-1000, 1000, {3}, torch::kInt16)},
      {"i8", torch::randint(-100, 100, {5}, torch::kInt8)},
      {"u8", torch::randint(0, 255, {7}, torch::kUInt8)},
      {"bool", torch::randint(0, 2, {3}).to(torch::kBool)},
  };
}

void expect_same_tensors(const NamedTensors& expected, const SafetensorsFile& file) {
  ASSERT_EQ(file.entries().size(), expected.size());
  for (const auto& [name, t] : expected) {
    ASSERT_TRUE(file.contains(name)) << name;
    const auto got = file.tensor(name);
    EXPECT_EQ(got.scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(got.sizes(), t.sizes()) << name;
    EXPECT_TRUE(torch::equal(got, t)) << name;
    EXPECT_TRUE(same_bits(got, t)) << name;
  }
}

TEST(Safetensors, RoundTrip) {
  const TempDir tmp("st-roundtrip");
  const auto dir = tmp.path;
  const auto path = dir + "/t.safetensors";
  const auto tensors = all_dtypes_tensors();
  flywheel::write_safetensors(path, tensors, {{"format", "pt"}, {"note", "x"}});
  EXPECT_FALSE(fs::exists(path + ".tmp"));

  SafetensorsFile file(path);
  expect_same_tensors(tensors, file);
  EXPECT_EQ(file.metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"note", "x"}}));
  // Entries come in data order, which is the order written; offsets tile the data section.
  uint64_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& e = file.entries()[i];
    EXPECT_EQ(e.name, tensors[i].first);
    EXPECT_EQ(e.begin, offset);
    offset = e.end;
  }
  EXPECT_EQ(file.entry("scalar").shape, std::vector<int64_t>{});
  EXPECT_EQ(file.entry("empty").shape, (std::vector<int64_t>{0, 5}));
}

TEST(Safetensors, WriteIsDeterministic) {
  const TempDir tmp("st-determinism");
  const auto dir = tmp.path;
  const auto tensors = all_dtypes_tensors();
  flywheel::write_safetensors(dir + "/a.safetensors", tensors);
  flywheel::write_safetensors(dir + "/b.safetensors", tensors);
  const auto a = read_bytes(dir + "/a.safetensors");
  EXPECT_EQ(a, read_bytes(dir + "/b.safetensors"));

  uint64_t header_len = 0;
  std::memcpy(&header_len, a.data(), 8);
  EXPECT_EQ(header_len % 8, 0u);
  const std::string header = a.substr(8, header_len);
  EXPECT_EQ(header.rfind(R"({"__metadata__":{"format":"pt"},"f32":{"dtype":"F32")", 0), 0u)
      << header;
  EXPECT_NE(header.find(R"("bf16":{"dtype":"BF16","shape":[3],"data_offsets":[24,30]})"),
            std::string::npos)
      << header;
}

TEST(Safetensors, TensorsOutliveFileAndAliasMapping) {
  const TempDir tmp("st-alias");
  const auto dir = tmp.path;
  const auto path = dir + "/t.safetensors";
  const auto tensors = all_dtypes_tensors();
  flywheel::write_safetensors(path, tensors);
  torch::Tensor f32, unaligned;
  {
    SafetensorsFile file(path);
    // Aligned data is zero-copy: two calls alias the same mapped bytes.
    EXPECT_EQ(file.tensor("f32").data_ptr(), file.tensor("f32").data_ptr());
    f32 = file.tensor("f32");
    unaligned = file.tensor("f32_after_bf16");
  }
  fs::remove(path);
  EXPECT_TRUE(torch::equal(f32, tensors[0].second));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(unaligned.data_ptr()) % sizeof(float), 0u);
  EXPECT_TRUE(torch::equal(unaligned, tensors[2].second));
}

TEST(Safetensors, FixtureLoadSaveLoadIsBitIdentical) {
  const auto fixture = flywheel::testing::fixtures_dir() + "/llama-tiny/model.safetensors";
  FLYWHEEL_REQUIRE_PATH(fixture);
  const TempDir tmp("st-fixture");
  const auto dir = tmp.path;

  SafetensorsFile original(fixture);
  NamedTensors tensors;
  for (const auto& e : original.entries()) {
    tensors.emplace_back(e.name, original.tensor(e.name));
  }
  ASSERT_FALSE(tensors.empty());
  flywheel::write_safetensors(dir + "/a.safetensors", tensors, original.metadata());

  SafetensorsFile reloaded(dir + "/a.safetensors");
  EXPECT_EQ(reloaded.metadata(), original.metadata());
  expect_same_tensors(tensors, reloaded);

  NamedTensors again;
  for (const auto& e : reloaded.entries()) {
    again.emplace_back(e.name, reloaded.tensor(e.name));
  }
  flywheel::write_safetensors(dir + "/b.safetensors", again, reloaded.metadata());
  EXPECT_EQ(read_bytes(dir + "/a.safetensors"), read_bytes(dir + "/b.safetensors"));
}

NamedTensors shardable_tensors() {
  torch::manual_seed(1);
  return {
      {"a", torch::randn({4, 4})},                    // 64 bytes
      {"b", torch::randn({4, 4})},                    // 64
      {"big", torch::randn({100})},                   // 400: over the limit, a shard of its own
      {"c", torch::randn({4, 4})},                    // 64
      {"d", torch::randn({2, 8})},                    // 64
      {"e", torch::randn({4}).to(torch::kBFloat16)},  // 8
  };
}

TEST(Safetensors, ShardedDirRoundTrip) {
  const TempDir tmp("st-sharded");
  const auto dir = tmp.path + "/model";
  const auto tensors = shardable_tensors();
  flywheel::save_safetensors_dir(dir, tensors, 1 << 20);  // first a single file ...
  ASSERT_TRUE(fs::exists(dir + "/model.safetensors"));
  flywheel::save_safetensors_dir(dir, tensors, 150);  // ... which sharding replaces

  EXPECT_FALSE(fs::exists(dir + "/model.safetensors"));
  const std::string s1 = "model-00001-of-00003.safetensors";
  const std::string s2 = "model-00002-of-00003.safetensors";
  const std::string s3 = "model-00003-of-00003.safetensors";
  for (const auto& s : {s1, s2, s3}) {
    EXPECT_TRUE(fs::exists(dir + "/" + s)) << s;
  }

  const std::string index_text = read_bytes(dir + "/model.safetensors.index.json");
  EXPECT_EQ(index_text.rfind("{\n  \"metadata\": {\n    \"total_size\": 664\n  },", 0), 0u)
      << index_text;
  const auto index = nlohmann::json::parse(index_text);
  EXPECT_EQ(index["metadata"]["total_size"], 664);
  const nlohmann::json expected_map = {{"a", s1}, {"b", s1}, {"big", s2},
                                       {"c", s3}, {"d", s3}, {"e", s3}};
  EXPECT_EQ(index["weight_map"], expected_map);

  const auto loaded = flywheel::load_safetensors_dir(dir);
  ASSERT_EQ(loaded.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    ASSERT_EQ(loaded.count(name), 1u) << name;
    EXPECT_TRUE(same_bits(loaded.at(name), t)) << name;
  }

  // Going back to a single file removes the index and every shard.
  flywheel::save_safetensors_dir(dir, tensors, 1 << 20);
  EXPECT_TRUE(fs::exists(dir + "/model.safetensors"));
  EXPECT_FALSE(fs::exists(dir + "/model.safetensors.index.json"));
  for (const auto& s : {s1, s2, s3}) {
    EXPECT_FALSE(fs::exists(dir + "/" + s)) << s;
  }
  const auto single = flywheel::load_safetensors_dir(dir);
  ASSERT_EQ(single.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    EXPECT_TRUE(same_bits(single.at(name), t)) << name;
  }
}

// Saves the sharded layout into `dir` and lets `edit` change the index's weight_map.
void save_sharded_and_edit_index(const std::string& dir,
                                 const std::function<void(nlohmann::json&)>& edit) {
  flywheel::save_safetensors_dir(dir, shardable_tensors(), 150);
  const auto index_path = dir + "/model.safetensors.index.json";
  auto index = nlohmann::json::parse(read_bytes(index_path));
  edit(index["weight_map"]);
  write_bytes(index_path, index.dump(2));
}

TEST(Safetensors, IndexListingMissingTensorIsError) {
  const TempDir tmp("st-ghost");
  const auto dir = tmp.path;
  save_sharded_and_edit_index(
      dir, [](nlohmann::json& m) { m["ghost"] = "model-00002-of-00003.safetensors"; });
  expect_user_error([&] { flywheel::load_safetensors_dir(dir); },
                    {"'ghost'", "model-00002-of-00003.safetensors", "index.json"}, "ghost");
}

TEST(Safetensors, ShardTensorMissingFromIndexIsError) {
  const TempDir tmp("st-unlisted");
  const auto dir = tmp.path;
  save_sharded_and_edit_index(dir, [](nlohmann::json& m) { m.erase("b"); });
  expect_user_error([&] { flywheel::load_safetensors_dir(dir); },
                    {"'b'", "model-00001-of-00003.safetensors", "index.json"}, "unlisted");
}

TEST(Safetensors, IndexShardNameMustBePlain) {
  for (const std::string bad : {"../model-00001-of-00003.safetensors", "..", "sub/x", ""}) {
    const TempDir tmp("st-badname");
    const auto dir = tmp.path;
    save_sharded_and_edit_index(dir, [&](nlohmann::json& m) { m["a"] = bad; });
    expect_user_error([&] { flywheel::load_safetensors_dir(dir); }, {"'a'", "plain file name"},
                      "shard name '" + bad + "'");
  }
}

TEST(Safetensors, LoadDirWithoutModelIsError) {
  const TempDir tmp("st-nomodel");
  const auto dir = tmp.path;
  expect_user_error([&] { flywheel::load_safetensors_dir(dir); },
                    {"no model.safetensors or model.safetensors.index.json in " + dir}, "empty");
}

TEST(Safetensors, WriteRejectsUnsupportedDtype) {
  const TempDir tmp("st-baddtype");
  const auto dir = tmp.path;
  const auto path = dir + "/t.safetensors";
  expect_user_error(
      [&] {
        flywheel::write_safetensors(path, {{"z", torch::zeros({2}, torch::kComplexFloat)}});
      },
      {path, "'z'", "dtype"}, "complex");
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

TEST(Safetensors, MissingEntryIsError) {
  const TempDir tmp("st-missing");
  const auto dir = tmp.path;
  const auto path = dir + "/t.safetensors";
  flywheel::write_safetensors(path, {{"x", torch::ones({2})}});
  SafetensorsFile file(path);
  EXPECT_FALSE(file.contains("y"));
  expect_user_error([&] { file.entry("y"); }, {path, "'y'"}, "entry");
  expect_user_error([&] { file.tensor("y"); }, {path, "'y'"}, "tensor");
}

TEST(Safetensors, CorruptFilesAreRejected) {
  const TempDir tmp("st-corrupt");
  const auto dir = tmp.path;
  auto f32 = [](const std::string& name, const std::string& shape, const std::string& offsets) {
    return "\"" + name + "\":{\"dtype\":\"F32\",\"shape\":" + shape +
           ",\"data_offsets\":" + offsets + "}";
  };

  flywheel::write_safetensors(dir + "/valid.safetensors", {{"big", torch::ones({64})}});
  const std::string valid = read_bytes(dir + "/valid.safetensors");

  struct Case {
    std::string label;
    std::string bytes;
    std::vector<std::string> expected;
  };
  const std::vector<Case> cases = {
      {"truncated", valid.substr(0, valid.size() - 100), {"'big'", "beyond the data section"}},
      {"empty file", "", {"shorter than the 8-byte"}},
      {"shorter than 8 bytes", "abc", {"shorter than the 8-byte"}},
      {"absurd header length", raw_file(1ULL << 60, "{}", 0), {"absurd header length"}},
      {"header longer than file", raw_file(1000, "{}", 16), {"header length 1000 exceeds"}},
      {"invalid JSON", raw_file("{\"w\": {\"dtype\": \"F32\",", 0), {"invalid JSON"}},
      {"header not an object", raw_file("[1,2,3]", 0), {"not a JSON object"}},
      {"entry not an object", raw_file(R"({"w":5})", 0), {"'w'", "expected an object"}},
      {"unknown dtype F8",
       raw_file(R"({"w":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}})", 4),
       {"'w'", "unknown dtype 'F8_E4M3'"}},
      {"unknown dtype Q4",
       raw_file(R"({"w":{"dtype":"Q4","shape":[4],"data_offsets":[0,2]}})", 2),
       {"'w'", "unknown dtype 'Q4'"}},
      {"missing dtype",
       raw_file(R"({"w":{"shape":[4],"data_offsets":[0,16]}})", 16),
       {"'w'", "\"dtype\""}},
      {"negative shape entry",
       raw_file("{" + f32("w", "[-1,4]", "[0,16]") + "}", 16),
       {"'w'", "non-negative integers", "[-1,4]"}},
      {"fractional shape entry",
       raw_file("{" + f32("w", "[2.5]", "[0,8]") + "}", 8),
       {"'w'", "non-negative integers"}},
      {"data_offsets not a pair",
       raw_file("{" + f32("w", "[2]", "[0]") + "}", 8),
       {"'w'", "data_offsets"}},
      {"data_offsets begin after end",
       raw_file("{" + f32("w", "[2]", "[8,0]") + "}", 8),
       {"'w'", "begin 8 > end 0"}},
      {"data_offsets end beyond file",
       raw_file("{" + f32("w", "[100]", "[0,400]") + "}", 16),
       {"'w'", "end 400 is beyond the data section (16 bytes"}},
      {"overlapping offsets",
       raw_file("{" + f32("a", "[2]", "[0,8]") + "," + f32("b", "[2]", "[4,12]") + "}", 12),
       {"'b'", "overlaps tensor 'a'"}},
      {"gap between tensors",
       raw_file("{" + f32("a", "[2]", "[0,8]") + "," + f32("b", "[2]", "[12,20]") + "}", 20),
       {"'b'", "gap of 4 bytes"}},
      {"gap at the start",
       raw_file("{" + f32("a", "[2]", "[4,12]") + "}", 12),
       {"'a'", "gap of 4 bytes"}},
      {"trailing data", raw_file("{" + f32("a", "[2]", "[0,8]") + "}", 12), {"4 trailing bytes"}},
      {"byte size inconsistent with dtype x shape",
       raw_file("{" + f32("w", "[3]", "[0,8]") + "}", 8),
       {"'w'", "does not match", "12 bytes"}},
      {"shape product overflow",
       raw_file("{" + f32("w", "[4294967296,4294967296,4]", "[0,8]") + "}", 8),
       {"'w'", "overflows"}},
      {"dimension beyond int64",
       raw_file("{" + f32("w", "[9223372036854775808,0]", "[0,0]") + "}", 0),
       {"'w'", "overflows"}},
      {"metadata value not a string",
       raw_file(R"({"__metadata__":{"format":1},)" + f32("w", "[2]", "[0,8]") + "}", 8),
       {"__metadata__", "'format'"}},
  };

  // The builders above are only meaningful if a well-formed hand-built file is accepted.
  write_bytes(dir + "/ok.safetensors",
              raw_file(R"({"__metadata__":{"format":"pt"},)" + f32("w", "[2]", "[0,8]") + "}", 8));
  EXPECT_NO_THROW(SafetensorsFile(dir + "/ok.safetensors"));

  for (size_t i = 0; i < cases.size(); ++i) {
    const auto path = dir + "/case" + std::to_string(i) + ".safetensors";
    write_bytes(path, cases[i].bytes);
    auto expected = cases[i].expected;
    expected.push_back(path);
    expect_user_error([&] { SafetensorsFile file(path); }, expected, cases[i].label);
  }
}

}  // namespace
