#include "trainer/eval/decontaminate.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <thread>

#include "trainer/core/error.h"
#include "trainer/core/jsonl.h"
#include "trainer/eval/ngram_tokenizer.h"

namespace flywheel {
namespace {

using nlohmann::json;

// The user turns' contents of a list of messages; a list of strings gives each string.
void append_list_texts(const json& list, const std::string& key, const std::string& where,
                       std::vector<std::string>* out) {
  for (const auto& item : list) {
    if (item.is_string()) {
      out->push_back(item.get<std::string>());
    } else if (item.is_object() && item.contains("role") && item.contains("content")) {
      if (item["role"] == "user" && item["content"].is_string())
        out->push_back(item["content"].get<std::string>());
    } else {
      throw UserError(where + "\"" + key +
                      "\" must hold strings or messages {\"role\", \"content\"}");
    }
  }
}

void append_field_texts(const json& row, const std::string& key, const std::string& where,
                        std::vector<std::string>* out) {
  const json& v = row[key];
  if (v.is_string()) {
    out->push_back(v.get<std::string>());
  } else if (v.is_array()) {
    append_list_texts(v, key, where, out);
  } else {
    throw UserError(where + "\"" + key + "\" must be a string or a list of messages");
  }
}

// Token positions covered by n-grams starting at the sorted `starts`: the union's size.
int64_t covered_tokens(const uint32_t* starts, size_t count, int n) {
  int64_t covered = 0;
  int64_t end = -1;  // one past the last token counted
  for (size_t k = 0; k < count; ++k) {
    const int64_t s = starts[k];
    covered += s + n - std::max<int64_t>(s, end);
    end = s + n;
  }
  return covered;
}

}  // namespace

const std::vector<std::string>& default_text_fields() {
  static const std::vector<std::string> kFields = {"messages", "prompt",  "instruction",
                                                   "question", "problem", "chosen"};
  return kFields;
}

std::vector<std::string> row_texts(const json& row, const std::vector<std::string>& fields,
                                   const std::string& where) {
  if (!row.is_object()) throw UserError(where + "expected a JSON object");
  std::vector<std::string> out;
  if (!fields.empty()) {
    for (const auto& key : fields) {
      if (!row.contains(key)) throw UserError(where + "missing the field \"" + key + "\"");
      append_field_texts(row, key, where, &out);
    }
    return out;
  }
  for (const auto& key : default_text_fields()) {
    if (row.contains(key)) {
      append_field_texts(row, key, where, &out);
      return out;
    }
  }
  std::string names;
  for (const auto& key : default_text_fields())
    names += (names.empty() ? "" : ", ") + key;
  throw UserError(where + "no text to compare: expected one of the fields " + names +
                  " (or name them with --field)");
}

NgramOverlapIndex::NgramOverlapIndex(const std::vector<EvalRow>& rows,
                                     const DecontaminationOptions& options)
    : options_(options) {
  if (options.ngram < 1) throw UserError("decontaminate: the n-gram size must be >= 1");
  if (!(options.threshold >= 0 && options.threshold < 1))
    throw UserError("decontaminate: the threshold must be in [0, 1)");
  struct Entry {
    uint64_t hash;
    Posting posting;
  };
  std::vector<Entry> entries;
  std::vector<uint64_t> tokens, grams;
  for (const auto& row : rows) {
    tokens.clear();
    const uint32_t instance = static_cast<uint32_t>(instances_.size());
    for (const auto& text : row.texts) {
      const size_t begin = tokens.size();
      append_token_hashes(text, &tokens);
      grams.clear();
      append_ngram_hashes(tokens, begin, tokens.size(), options.ngram, &grams);
      for (size_t i = 0; i < grams.size(); ++i)
        entries.push_back({grams[i], {instance, static_cast<uint32_t>(begin + i)}});
    }
    instances_.push_back({row.set, row.line, static_cast<int64_t>(tokens.size())});
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    if (a.hash != b.hash) return a.hash < b.hash;
    if (a.posting.instance != b.posting.instance) return a.posting.instance < b.posting.instance;
    return a.posting.start < b.posting.start;
  });
  size_t slots = 16;
  while (slots < 2 * entries.size())
    slots *= 2;
  mask_ = slots - 1;
  slot_hash_.assign(slots, 0);
  slot_ngram_.assign(slots, UINT32_MAX);
  for (size_t k = 0; k < entries.size(); ++k) {
    if (k == 0 || entries[k].hash != entries[k - 1].hash) {
      const uint32_t u = static_cast<uint32_t>(offsets_.size());
      offsets_.push_back(static_cast<uint32_t>(postings_.size()));
      uint64_t s = entries[k].hash & mask_;
      while (slot_ngram_[s] != UINT32_MAX)
        s = (s + 1) & mask_;
      slot_hash_[s] = entries[k].hash;
      slot_ngram_[s] = u;
    }
    postings_.push_back(entries[k].posting);
  }
  offsets_.push_back(static_cast<uint32_t>(postings_.size()));
}

int64_t NgramOverlapIndex::find(uint64_t hash) const {
  for (uint64_t s = hash & mask_;; s = (s + 1) & mask_) {
    if (slot_ngram_[s] == UINT32_MAX) return -1;
    if (slot_hash_[s] == hash) return slot_ngram_[s];
  }
}

std::vector<Overlap> NgramOverlapIndex::match(const std::vector<std::string>& texts) const {
  std::vector<uint64_t> tokens, grams;
  for (const auto& text : texts) {
    const size_t begin = tokens.size();
    append_token_hashes(text, &tokens);
    append_ngram_hashes(tokens, begin, tokens.size(), options_.ngram, &grams);
  }
  // Each shared n-gram once, however often the training text repeats it.
  std::vector<int64_t> shared;
  for (uint64_t h : grams)
    if (const int64_t u = find(h); u >= 0) shared.push_back(u);
  std::vector<Overlap> out;
  if (shared.empty()) return out;
  std::sort(shared.begin(), shared.end());
  shared.erase(std::unique(shared.begin(), shared.end()), shared.end());
  std::vector<Posting> hits;
  for (int64_t u : shared)
    hits.insert(hits.end(), postings_.begin() + offsets_[static_cast<size_t>(u)],
                postings_.begin() + offsets_[static_cast<size_t>(u) + 1]);
  std::sort(hits.begin(), hits.end(), [](const Posting& a, const Posting& b) {
    return a.instance != b.instance ? a.instance < b.instance : a.start < b.start;
  });
  std::vector<uint32_t> starts;
  for (size_t k = 0; k < hits.size();) {
    const uint32_t instance = hits[k].instance;
    starts.clear();
    for (; k < hits.size() && hits[k].instance == instance; ++k)
      starts.push_back(hits[k].start);
    const double fraction =
        static_cast<double>(covered_tokens(starts.data(), starts.size(), options_.ngram)) /
        static_cast<double>(instances_[instance].tokens);
    if (fraction > options_.threshold) out.push_back({static_cast<int>(instance), fraction});
  }
  return out;
}

TrainingScan scan_training_file(const std::string& path, const std::vector<std::string>& fields,
                                const NgramOverlapIndex& index, int threads) {
  const int workers =
      threads > 0 ? threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  struct Batch {
    std::vector<std::string> text;
    std::vector<int64_t> line;
  };
  // Lines are read in batches; while the workers match one batch the reader fills the next.
  constexpr size_t kBatchLines = 4096;
  JsonlReader reader(path);
  auto read_batch = [&](Batch* b) {
    b->text.resize(kBatchLines);
    b->line.resize(kBatchLines);
    size_t n = 0;
    while (n < kBatchLines && reader.next_line(&b->text[n], &b->line[n]))
      ++n;
    b->text.resize(n);
    b->line.resize(n);
  };
  auto match_range = [&](const Batch& b, size_t begin, size_t end) {
    std::vector<TrainingMatch> found;
    for (size_t k = begin; k < end; ++k) {
      const std::string where = path + ":" + std::to_string(b.line[k]) + ": ";
      const json row = parse_jsonl_line(path, b.line[k], b.text[k]);
      for (const Overlap& o : index.match(row_texts(row, fields, where)))
        found.push_back({b.line[k], o.instance, o.fraction});
    }
    return found;
  };

  TrainingScan scan;
  Batch current, next;
  read_batch(&current);
  while (!current.text.empty()) {
    std::vector<std::future<std::vector<TrainingMatch>>> parts;
    const size_t n = current.text.size();
    for (int w = 0; w < workers; ++w) {
      const size_t begin = n * static_cast<size_t>(w) / static_cast<size_t>(workers);
      const size_t end = n * static_cast<size_t>(w + 1) / static_cast<size_t>(workers);
      parts.push_back(std::async(std::launch::async, match_range, std::cref(current), begin, end));
    }
    read_batch(&next);
    // In order, so that the first bad line of the file is the error reported.
    for (auto& part : parts) {
      const auto found = part.get();
      scan.matches.insert(scan.matches.end(), found.begin(), found.end());
    }
    scan.rows += static_cast<int64_t>(n);
    std::swap(current, next);
  }
  return scan;
}

int64_t copy_jsonl_without_lines(const std::string& in, const std::string& out,
                                 const std::vector<int64_t>& drop) {
  errno = 0;
  gzFile file = gzopen(in.c_str(), "rb");
  if (file == nullptr)
    throw UserError("cannot open " + in + ": " +
                    (errno != 0 ? std::strerror(errno) : "out of memory"));
  const std::string tmp = out + ".tmp";
  std::ofstream sink(tmp, std::ios::binary);
  if (!sink) {
    gzclose(file);
    throw UserError("cannot write " + tmp);
  }
  std::vector<int64_t> sorted = drop;
  std::sort(sorted.begin(), sorted.end());
  auto next_drop = sorted.begin();
  int64_t line = 1, written = 0;
  bool line_started = false;  // some byte of the current line has been seen
  constexpr unsigned kChunk = 1 << 16;
  std::vector<char> chunk(kChunk);
  while (true) {
    const int got = gzread(file, chunk.data(), kChunk);
    if (got < 0) {
      int status = Z_OK;
      const std::string message = gzerror(file, &status);
      gzclose(file);
      throw UserError("cannot read " + in + ": " + message);
    }
    if (got == 0) {
      int status = Z_OK;
      gzerror(file, &status);
      if (status == Z_BUF_ERROR) {  // the file ends inside a gzip stream
        gzclose(file);
        throw UserError("cannot read " + in + ": unexpected end of file (truncated gzip stream)");
      }
      break;
    }
    size_t pos = 0;
    const size_t size = static_cast<size_t>(got);
    while (pos < size) {
      while (next_drop != sorted.end() && *next_drop < line)
        ++next_drop;
      const bool keep = next_drop == sorted.end() || *next_drop != line;
      const char* newline =
          static_cast<const char*>(std::memchr(chunk.data() + pos, '\n', size - pos));
      const size_t end = newline ? static_cast<size_t>(newline - chunk.data()) + 1 : size;
      if (keep) sink.write(chunk.data() + pos, static_cast<std::streamsize>(end - pos));
      line_started = true;
      if (newline) {
        written += keep;
        ++line;
        line_started = false;
      }
      pos = end;
    }
  }
  gzclose(file);
  if (line_started) {  // a last line without "\n"
    while (next_drop != sorted.end() && *next_drop < line)
      ++next_drop;
    written += next_drop == sorted.end() || *next_drop != line;
  }
  if (!sink.flush()) throw UserError("cannot write " + tmp);
  sink.close();
  if (std::rename(tmp.c_str(), out.c_str()) != 0)
    throw UserError("cannot rename " + tmp + " to " + out + ": " + std::strerror(errno));
  return written;
}

std::vector<EvalRow> read_eval_sets(const std::vector<std::string>& paths,
                                    const std::vector<std::string>& fields) {
  std::vector<EvalRow> rows;
  for (size_t set = 0; set < paths.size(); ++set) {
    JsonlReader reader(paths[set]);
    for (JsonlRecord rec; reader.next(&rec);) {
      const std::string where = paths[set] + ":" + std::to_string(rec.line) + ": ";
      rows.push_back({static_cast<int>(set), rec.line, row_texts(rec.value, fields, where)});
    }
  }
  return rows;
}

double EvalSetReport::fraction() const {
  return instances > 0 ? static_cast<double>(overlapping.size()) / static_cast<double>(instances)
                       : 0.0;
}

nlohmann::json DecontaminationReport::to_json() const {
  nlohmann::json out = {{"train", train},
                        {"training_rows", training_rows},
                        {"flagged_rows", flagged.size()},
                        {"ngram", options.ngram},
                        {"threshold", options.threshold},
                        {"seconds", seconds},
                        {"eval_sets", nlohmann::json::array()}};
  for (const auto& s : sets) {
    out["eval_sets"].push_back({{"path", s.path},
                                {"instances", s.instances},
                                {"too_short", s.too_short},
                                {"overlapping", s.overlapping.size()},
                                {"fraction", s.fraction()},
                                {"eval_lines", s.overlapping},
                                {"training_lines", s.training_lines},
                                {"pairs", s.pairs}});
  }
  return out;
}

DecontaminationReport decontaminate_files(const std::string& train,
                                          const std::vector<std::string>& evals,
                                          const std::vector<std::string>& fields,
                                          const std::vector<std::string>& eval_fields,
                                          const DecontaminationOptions& options, int threads) {
  DecontaminationReport report;
  report.train = train;
  report.options = options;
  const auto start = std::chrono::steady_clock::now();
  const NgramOverlapIndex index(read_eval_sets(evals, eval_fields), options);
  const TrainingScan scan = scan_training_file(train, fields, index, threads);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  report.training_rows = scan.rows;
  report.sets.resize(evals.size());
  for (size_t k = 0; k < evals.size(); ++k)
    report.sets[k].path = evals[k];
  for (const auto& instance : index.instances()) {
    auto& set = report.sets[static_cast<size_t>(instance.set)];
    ++set.instances;
    set.too_short += instance.tokens < options.ngram;
  }
  for (const auto& m : scan.matches) {
    const EvalInstance& instance = index.instances()[static_cast<size_t>(m.instance)];
    auto& set = report.sets[static_cast<size_t>(instance.set)];
    set.overlapping.insert(instance.line);
    set.training_lines.insert(m.train_line);
    set.pairs.push_back(
        {{"eval_line", instance.line}, {"train_line", m.train_line}, {"overlap", m.fraction}});
    report.flagged.insert(m.train_line);
  }
  return report;
}

}  // namespace flywheel
