// `flywheel eval ifeval --responses FILE.jsonl`: IFEval accuracy of a model's responses, as the
// reference evaluation reports it. Responses ({"prompt", "response"} lines) are matched to the
// benchmark's input_data.jsonl by prompt text, as the reference does (a later line with the same
// prompt replaces an earlier one; a prompt with no response is an error).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "trainer/core/error.h"
#include "trainer/core/jsonl.h"
#include "verifiers/batch.h"

namespace flywheel::cli {
namespace {

const std::vector<FlagSpec>& ifeval_flags() {
  static const std::vector<FlagSpec> kFlags = {
      {"responses", "FILE", "JSONL lines {\"prompt\", \"response\"}"},
      {"data", "FILE",
       "IFEval's input_data.jsonl (default: $FLYWHEEL_SHARED/data/ifeval/input_data.jsonl, "
       "else ../shared/data/ifeval/input_data.jsonl)"},
      {"out", "FILE", "also write each prompt's strict and loose results (JSONL)"},
      {"threads", "N", "scoring threads (default: all hardware threads)"},
  };
  return kFlags;
}

std::string default_data_path() {
  const char* shared = std::getenv("FLYWHEEL_SHARED");
  const std::string root = shared != nullptr && *shared != '\0' ? shared : "../shared";
  return root + "/data/ifeval/input_data.jsonl";
}

struct Tally {
  int64_t total = 0, strict = 0, loose = 0;
  void add(bool s, bool l) {
    ++total;
    strict += s ? 1 : 0;
    loose += l ? 1 : 0;
  }
};

double rate(int64_t part, int64_t whole) {
  return whole > 0 ? static_cast<double>(part) / static_cast<double>(whole) : 0.0;
}

int run_ifeval(const std::vector<std::string>& argv) {
  const Args args("eval ifeval", ifeval_flags(), argv);
  if (args.help()) {
    std::printf("%s", format_help("eval ifeval", "--responses FILE.jsonl [options]",
                                  "IFEval prompt- and instruction-level accuracy, strict and "
                                  "loose, with the per-category table.",
                                  ifeval_flags())
                          .c_str());
    return 0;
  }
  const std::string responses_path = args.require("responses");
  const std::string data_path = args.get("data").value_or(default_data_path());
  if (!std::filesystem::exists(data_path))
    throw UserError("IFEval data " + data_path + " not found (pass --data input_data.jsonl)");

  std::map<std::string, std::string> responses;
  JsonlReader responses_reader(responses_path);
  for (JsonlRecord rec; responses_reader.next(&rec);) {
    const std::string where = responses_path + ":" + std::to_string(rec.line) + ": ";
    const auto& v = rec.value;
    if (!v.is_object() || !v.contains("prompt") || !v["prompt"].is_string() ||
        !v.contains("response") || !v["response"].is_string())
      throw UserError(where + "expected {\"prompt\": string, \"response\": string}");
    responses[v["prompt"].get<std::string>()] = v["response"].get<std::string>();
  }

  std::vector<nlohmann::json> rows;
  std::vector<VerifyJob> jobs;
  const VerifierInfo& ifeval = find_verifier("ifeval");
  JsonlReader data_reader(data_path);
  for (JsonlRecord rec; data_reader.next(&rec);) {
    const std::string where = data_path + ":" + std::to_string(rec.line) + ": ";
    const auto& row = rec.value;
    if (!row.is_object() || !row.contains("prompt") || !row["prompt"].is_string())
      throw UserError(where + "expected an IFEval row with \"prompt\"");
    const auto it = responses.find(row["prompt"].get<std::string>());
    if (it == responses.end()) {
      throw UserError(where + "no response in " + responses_path + " for the prompt \"" +
                      row["prompt"].get<std::string>().substr(0, 60) + "...\"");
    }
    VerifyJob job;
    job.verifier = &ifeval;
    job.input.prompt = row["prompt"];
    job.input.response = it->second;
    job.input.fields = row;
    jobs.push_back(std::move(job));
    rows.push_back(row);
  }
  const auto verdicts =
      verify_batch(jobs, VerifyOptions{}, static_cast<int>(args.get_int("threads", 0, 0)));

  Tally prompts, instructions;
  std::map<std::string, Tally> categories, ids;
  std::ofstream out;
  if (const auto path = args.get("out")) {
    out.open(*path);
    if (!out) throw UserError("cannot write " + *path);
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& d = verdicts[i].details;
    if (!verdicts[i].correct) {
      throw UserError(data_path + ": prompt " + rows[i].value("key", nlohmann::json()).dump() +
                      ": " + d.value("reason", std::string("not applicable")));
    }
    const auto strict = d["strict"].get<std::vector<bool>>();
    const auto loose = d["loose"].get<std::vector<bool>>();
    const auto id_list = rows[i]["instruction_id_list"].get<std::vector<std::string>>();
    bool all_strict = true, all_loose = true;
    for (size_t k = 0; k < id_list.size(); ++k) {
      instructions.add(strict[k], loose[k]);
      ids[id_list[k]].add(strict[k], loose[k]);
      categories[id_list[k].substr(0, id_list[k].find(':'))].add(strict[k], loose[k]);
      all_strict = all_strict && strict[k];
      all_loose = all_loose && loose[k];
    }
    prompts.add(all_strict, all_loose);
    if (out.is_open()) {
      out << nlohmann::json({{"prompt", rows[i]["prompt"]},
                             {"response", jobs[i].input.response},
                             {"instruction_id_list", id_list},
                             {"strict", strict},
                             {"loose", loose},
                             {"follow_all_strict", all_strict},
                             {"follow_all_loose", all_loose}})
                 .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
          << "\n";
    }
  }
  std::printf("IFEval: %lld prompts, %lld instructions (%s)\n\n",
              static_cast<long long>(prompts.total), static_cast<long long>(instructions.total),
              responses_path.c_str());
  std::printf("%-48s %8s %8s\n", "", "strict", "loose");
  std::printf("%-48s %8.4f %8.4f\n", "prompt-level accuracy", rate(prompts.strict, prompts.total),
              rate(prompts.loose, prompts.total));
  std::printf("%-48s %8.4f %8.4f\n\n", "instruction-level accuracy",
              rate(instructions.strict, instructions.total),
              rate(instructions.loose, instructions.total));
  std::printf("%-48s %5s %8s %8s\n", "category / instruction", "n", "strict", "loose");
  for (const auto& [category, t] : categories) {
    std::printf("%-48s %5lld %8.4f %8.4f\n", category.c_str(), static_cast<long long>(t.total),
                rate(t.strict, t.total), rate(t.loose, t.total));
    for (const auto& [id, u] : ids) {
      if (id.rfind(category + ":", 0) != 0) continue;
      std::printf("  %-46s %5lld %8.4f %8.4f\n", id.c_str(), static_cast<long long>(u.total),
                  rate(u.strict, u.total), rate(u.loose, u.total));
    }
  }
  return 0;
}

}  // namespace

int run_eval(const std::vector<std::string>& argv) {
  if (argv.empty() || argv[0] == "--help" || argv[0] == "-h") {
    std::printf(
        "Usage: flywheel eval <benchmark> [options]\n\nBenchmarks:\n  ifeval   IFEval "
        "instruction following (strict and loose)\n");
    return argv.empty() ? kUserErrorExit : 0;
  }
  if (argv[0] == "ifeval") return run_ifeval({argv.begin() + 1, argv.end()});
  throw UserError("flywheel eval: unknown benchmark '" + argv[0] + "' (known: ifeval)");
}

}  // namespace flywheel::cli
