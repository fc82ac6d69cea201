// `flywheel verify --in FILE.jsonl --out FILE.jsonl`: scores responses with the verifiers.
// Each input row: {"response", "ground_truth", "dataset"} (+ "prompt" where a checker reads it,
// else the last user turn of "messages", as open-instruct's RLVR rows carry it; IFEval rows
// carry "instruction_id_list" and "kwargs", beside or JSON-encoded in "ground_truth"). Each output
// line is the row plus "correct" (bool, or null when the checker does not apply), "score",
// "verifier" and "details"; a summary per verifier goes to stderr.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>

#include "cli/args.h"
#include "cli/commands.h"
#include "trainer/core/error.h"
#include "trainer/core/jsonl.h"
#include "verifiers/batch.h"
#include "verifiers/text.h"

namespace flywheel::cli {
namespace {

const std::vector<FlagSpec>& verify_flags() {
  static const std::vector<FlagSpec> kFlags = {
      {"in", "FILE", "JSONL rows {response, ground_truth, dataset} (or .jsonl.gz)"},
      {"out", "FILE", "where the scored rows go (JSONL)"},
      {"dataset", "NAME", "verifier for rows without a \"dataset\" field"},
      {"success-reward", "R", "score of a correct response (default 1; Tulu 3 used 10)"},
      {"threads", "N", "scoring threads (default: all hardware threads)"},
      {"time-limit", "S",
       "seconds a response may take before it is judged incorrect (default 5; 0: none)"},
      {"max-response-bytes", "N", "longer responses are judged incorrect unread (default 1048576)"},
  };
  return kFlags;
}

std::string string_field(const nlohmann::json& row, const char* key, const std::string& where,
                         bool required) {
  if (!row.contains(key)) {
    if (required) throw UserError(where + "missing \"" + key + "\"");
    return {};
  }
  const auto& v = row[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number()) return v.dump();  // a numeric ground truth (GSM8K rows often have them)
  throw UserError(where + "\"" + key + "\" must be a string");
}

// The prompt of an RLVR row in open-instruct's format ({"messages": [...], ...}): its last
// user message; empty when there is none.
std::string last_user_message(const nlohmann::json& row) {
  if (!row.contains("messages") || !row["messages"].is_array()) return {};
  std::string prompt;
  for (const auto& m : row["messages"]) {
    if (m.is_object() && m.value("role", "") == "user" && m.contains("content") &&
        m["content"].is_string())
      prompt = m["content"].get<std::string>();
  }
  return prompt;
}

}  // namespace

int run_verify(const std::vector<std::string>& argv) {
  const Args args("verify", verify_flags(), argv);
  if (args.help()) {
    std::printf("%s", format_help(
                          "verify", "--in FILE.jsonl --out FILE.jsonl [options]",
                          "Score responses with the verifiers (one per row's dataset). "
                          "Known verifiers:\n" +
                              [] {
                                std::string list;
                                for (const auto& v : all_verifiers())
                                  list += "  " + v.name + ": " + v.description + "\n";
                                return list;
                              }(),
                          verify_flags())
                          .c_str());
    return 0;
  }
  const std::string in_path = args.require("in");
  const std::string out_path = args.require("out");
  const auto fallback = args.get("dataset");
  if (fallback) find_verifier(*fallback);  // an unknown name is an error before any reading
  VerifyOptions options;
  options.success_reward = args.get_double("success-reward", 1.0);
  options.time_limit_seconds = args.get_double("time-limit", options.time_limit_seconds);
  if (options.time_limit_seconds < 0) throw UserError("flywheel verify: --time-limit must be >= 0");
  options.max_response_bytes = static_cast<size_t>(
      args.get_int("max-response-bytes", static_cast<int64_t>(options.max_response_bytes), 1));
  const int threads = static_cast<int>(args.get_int("threads", 0, 0));

  std::vector<nlohmann::json> rows;
  std::vector<VerifyJob> jobs;
  JsonlReader reader(in_path);
  for (JsonlRecord rec; reader.next(&rec);) {
    const std::string where = in_path + ":" + std::to_string(rec.line) + ": ";
    const auto& row = rec.value;
    if (!row.is_object()) throw UserError(where + "expected a JSON object");
    std::string dataset = string_field(row, "dataset", where, !fallback);
    if (dataset.empty() && fallback) dataset = *fallback;
    VerifyJob job;
    try {
      job.verifier = &find_verifier(dataset);
    } catch (const UserError& e) {
      throw UserError(where + e.what());
    }
    job.input.prompt = string_field(row, "prompt", where, false);
    if (job.input.prompt.empty()) job.input.prompt = last_user_message(row);
    job.input.response = string_field(row, "response", where, true);
    job.input.ground_truth = string_field(row, "ground_truth", where, false);
    job.input.fields = row;
    jobs.push_back(std::move(job));
    rows.push_back(row);
  }
  const auto start = std::chrono::steady_clock::now();
  const auto verdicts = verify_batch(jobs, options, threads);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // Written beside the target and renamed into place: a reader never sees half a file.
  const std::string tmp = out_path + ".tmp";
  {
    std::ofstream out(tmp);
    if (!out) throw UserError("cannot write " + tmp);
    for (size_t i = 0; i < rows.size(); ++i) {
      nlohmann::json line = rows[i];
      line["correct"] = verdicts[i].correct ? nlohmann::json(*verdicts[i].correct) : nullptr;
      line["score"] = verdicts[i].score;
      line["verifier"] = jobs[i].verifier->name;
      line["details"] = verdicts[i].details;
      // IFEval rows also carry their per-instruction results at the top, as the reference's
      // output does.
      for (const char* mode : {"strict", "loose"})
        if (verdicts[i].details.contains(mode)) line[mode] = verdicts[i].details[mode];
      out << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    }
    if (!out.flush()) throw UserError("cannot write " + tmp);
  }
  std::rename(tmp.c_str(), out_path.c_str());

  struct Tally {
    int64_t rows = 0, correct = 0, incorrect = 0, not_applicable = 0;
  };
  std::map<std::string, Tally> tally;
  for (size_t i = 0; i < verdicts.size(); ++i) {
    Tally& t = tally[jobs[i].verifier->name];
    ++t.rows;
    if (!verdicts[i].correct) {
      ++t.not_applicable;
    } else {
      ++(*verdicts[i].correct ? t.correct : t.incorrect);
    }
  }
  std::fprintf(stderr, "%-12s %8s %8s %10s %8s %9s\n", "verifier", "rows", "correct", "incorrect",
               "n/a", "accuracy");
  for (const auto& [name, t] : tally) {
    const int64_t judged = t.correct + t.incorrect;
    std::fprintf(stderr, "%-12s %8lld %8lld %10lld %8lld %9.4f\n", name.c_str(),
                 static_cast<long long>(t.rows), static_cast<long long>(t.correct),
                 static_cast<long long>(t.incorrect), static_cast<long long>(t.not_applicable),
                 judged > 0 ? static_cast<double>(t.correct) / static_cast<double>(judged) : 0.0);
  }
  std::fprintf(stderr, "%zu rows in %.3f s (%.0f rows/s) -> %s\n", rows.size(), seconds,
               seconds > 0 ? static_cast<double>(rows.size()) / seconds : 0.0, out_path.c_str());
  return 0;
}

}  // namespace flywheel::cli
