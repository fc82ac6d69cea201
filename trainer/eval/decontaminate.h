// Training-set decontamination by n-gram overlap, with Tulu 3's rule (Lambert et al. 2024, §
// "Decontamination"; open-instruct's decontamination/search.py): a test token matches a
// training instance when the two share an n-gram (n = 8) containing that token, and a test
// instance overlaps a training instance when more than `threshold` (0.5) of its tokens match that
// one instance. Tokens: ngram_tokenizer.h.
//
// Instead of an Elasticsearch index of the training set queried n-gram by n-gram (which
// returns at most `search_size` training documents per n-gram), the eval sets' n-grams are
// hashed into memory and the training file is streamed past them once, so every training row
// is checked and nothing is capped.
//
// What is compared (row_texts): by default the first of these fields a row has — "messages"
// (the contents of its user turns: open-instruct indexes user turns only, where a leaked test
// prompt would sit), "prompt", "instruction", "question", "problem", "chosen" (a preference
// pair's conversation, its user turns) — or the fields named. A string field is one text, a
// list of messages gives its user turns' contents, a list of strings each string. n-grams never
// span two texts; an instance's tokens are those of all its texts. open-instruct scores each
// user turn of a training row separately and each test field separately (averaging over
// fields); here a training row is one instance, as the paper's rule is stated, and a test
// instance's fields are pooled.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace flywheel {

struct DecontaminationOptions {
  int ngram = 8;           // n
  double threshold = 0.5;  // overlap when matched tokens / tokens > threshold, in [0, 1)
};

// The fields row_texts looks for when none are named.
const std::vector<std::string>& default_text_fields();

// The texts of one JSONL row (see above). UserError naming `where` (e.g. "FILE:LINE: ") and the
// field when a named field is missing or has another type, or when none of the default fields
// is present.
std::vector<std::string> row_texts(const nlohmann::json& row,
                                   const std::vector<std::string>& fields,
                                   const std::string& where);

// One eval instance as read: which eval set (an index the caller chooses), its line, its texts.
struct EvalRow {
  int set = 0;
  int64_t line = 0;
  std::vector<std::string> texts;
};

struct EvalInstance {
  int set = 0;
  int64_t line = 0;
  int64_t tokens = 0;  // fewer than n: it has no n-gram and can never overlap
};

// A test instance overlapping a training row: the fraction of its tokens that row matches.
struct Overlap {
  int instance = 0;  // index into NgramOverlapIndex::instances()
  double fraction = 0;
};

// The eval sets' n-grams, hashed: n-gram → the (instance, position) pairs where it starts.
class NgramOverlapIndex {
 public:
  NgramOverlapIndex(const std::vector<EvalRow>& rows, const DecontaminationOptions& options);

  // The instances that a training row with these texts overlaps (fraction > threshold),
  // by instance index. Safe to call from several threads at once.
  std::vector<Overlap> match(const std::vector<std::string>& texts) const;

  const std::vector<EvalInstance>& instances() const { return instances_; }
  const DecontaminationOptions& options() const { return options_; }

 private:
  struct Posting {
    uint32_t instance;
    uint32_t start;  // token position of the n-gram's first token in the instance
  };
  int64_t find(uint64_t hash) const;  // index of the n-gram in offsets_, or -1

  DecontaminationOptions options_;
  std::vector<EvalInstance> instances_;
  // An open-addressing table (linear probing, at most half full) from n-gram hash to the n-gram's
  // number u; its postings are postings_[offsets_[u], offsets_[u + 1]).
  std::vector<uint64_t> slot_hash_;
  std::vector<uint32_t> slot_ngram_;
  std::vector<uint32_t> offsets_;
  std::vector<Posting> postings_;
  uint64_t mask_ = 0;
};

// One overlapping (test instance, training row) pair.
struct TrainingMatch {
  int64_t train_line = 0;
  int instance = 0;
  double fraction = 0;
};

struct TrainingScan {
  int64_t rows = 0;                    // non-blank training lines read
  std::vector<TrainingMatch> matches;  // by training line, then instance
};

// Streams a training JSONL file (plain or gzip) past the index on `threads` threads (0: all
// hardware threads). Errors name the file and line: invalid JSON, or a row without text.
TrainingScan scan_training_file(const std::string& path, const std::vector<std::string>& fields,
                                const NgramOverlapIndex& index, int threads);

// Copies `in` to `out` without the lines numbered in `drop` (1-based, as JsonlReader counts
// them); every other line, blank ones and "\r" included, is copied byte for byte (a gzip input
// is written decompressed). Written to OUT.tmp and renamed, so `out` is never half-written.
// Returns the number of lines written.
int64_t copy_jsonl_without_lines(const std::string& in, const std::string& out,
                                 const std::vector<int64_t>& drop);

// The eval rows of `paths` (set k = paths[k]), their texts by row_texts with `fields`.
std::vector<EvalRow> read_eval_sets(const std::vector<std::string>& paths,
                                    const std::vector<std::string>& fields);

// What a training file holds of each eval set.
struct EvalSetReport {
  std::string path;
  int64_t instances = 0, too_short = 0;            // too short: fewer than n tokens
  std::set<int64_t> overlapping;                   // eval lines found in some training row
  std::set<int64_t> training_lines;                // training rows containing one of them
  nlohmann::json pairs = nlohmann::json::array();  // {eval_line, train_line, overlap}
  double fraction() const;                         // overlapping / instances
};

struct DecontaminationReport {
  std::string train;
  int64_t training_rows = 0;
  std::set<int64_t> flagged;  // training lines overlapping any eval set
  DecontaminationOptions options;
  double seconds = 0;  // index and scan
  std::vector<EvalSetReport> sets;
  // {train, training_rows, flagged_rows, ngram, threshold, seconds, eval_sets: [{path,
  // instances, too_short, overlapping, fraction, eval_lines, training_lines, pairs}]}
  nlohmann::json to_json() const;
};

// Indexes the eval sets and scans the training file (threads as scan_training_file).
// eval_fields: the eval rows' fields, when they differ from the training rows' `fields`.
DecontaminationReport decontaminate_files(const std::string& train,
                                          const std::vector<std::string>& evals,
                                          const std::vector<std::string>& fields,
                                          const std::vector<std::string>& eval_fields,
                                          const DecontaminationOptions& options, int threads);

}  // namespace flywheel
