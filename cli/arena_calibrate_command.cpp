// `flywheel arena calibrate --confidences FILE.jsonl --alpha A --delta D`: the confidence
// threshold above which a judge's verdicts agree with humans at rate ≥ 1 − α with probability
// ≥ 1 − δ (Trust or Escalate; trainer/eval/calibration.h), and with --heldout how that threshold
// does on other labelled items.
//
// Each row: {"confidence": c, "agree": true|false}, or {"confidence": c, "judge": v, "human": w}
// where the judge agrees when v equals w (any JSON values, e.g. "model_a").
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "trainer/core/error.h"
#include "trainer/core/jsonl.h"
#include "trainer/eval/calibration.h"

namespace flywheel::cli {
namespace {

using nlohmann::json;

const std::vector<FlagSpec>& calibrate_flags() {
  static const std::vector<FlagSpec> kFlags = {
      {"confidences", "FILE",
       "calibration items: JSONL {confidence, agree} or {confidence, judge, human}"},
      {"alpha", "A", "tolerated disagreement rate among trusted verdicts, in (0, 1)"},
      {"delta", "D", "tolerated probability that the guarantee fails, in (0, 1)"},
      {"min-items", "N", "items a threshold must cover before it is tested (default 30)"},
      {"heldout", "FILE",
       "items of the same format to report the threshold's coverage and agreement on"},
      {"json", "", "print the result as one JSON object"},
  };
  return kFlags;
}

std::vector<JudgedItem> read_items(const std::string& path) {
  std::vector<JudgedItem> items;
  JsonlReader reader(path);
  for (JsonlRecord rec; reader.next(&rec);) {
    const std::string where = path + ":" + std::to_string(rec.line) + ": ";
    const json& row = rec.value;
    if (!row.is_object()) throw UserError(where + "expected a JSON object");
    if (!row.contains("confidence") || !row["confidence"].is_number())
      throw UserError(where + "\"confidence\" must be a number");
    JudgedItem item;
    item.confidence = row["confidence"].get<double>();
    if (row.contains("agree")) {
      if (!row["agree"].is_boolean()) throw UserError(where + "\"agree\" must be true or false");
      item.agrees = row["agree"].get<bool>();
    } else if (row.contains("judge") && row.contains("human")) {
      item.agrees = row["judge"] == row["human"];
    } else {
      throw UserError(where + "expected \"agree\", or both \"judge\" and \"human\"");
    }
    items.push_back(item);
  }
  if (items.empty()) throw UserError(path + ": no items");
  return items;
}

double required_rate(const Args& args, const char* name) {
  if (!args.get(name))
    throw UserError(std::string("flywheel arena calibrate: --") + name + " is required");
  const double v = args.get_double(name, 0);
  if (!(v > 0 && v < 1))
    throw UserError(std::string("flywheel arena calibrate: --") + name + " must be in (0, 1)");
  return v;
}

json outcome_json(const ThresholdOutcome& o) {
  return {{"items", o.items},
          {"covered", o.covered},
          {"coverage", o.coverage},
          {"agreement", o.agreement}};
}

}  // namespace

int run_arena_calibrate(const std::vector<std::string>& argv) {
  const Args args("arena calibrate", calibrate_flags(), argv);
  if (args.help()) {
    std::fputs(
        format_help("arena calibrate", "--confidences FILE.jsonl --alpha A --delta D [options]",
                    "Finds the judge-confidence threshold with a guaranteed human-agreement "
                    "rate (Trust or Escalate's fixed-sequence test).",
                    calibrate_flags())
            .c_str(),
        stdout);
    return 0;
  }
  CalibrationOptions options;
  options.alpha = required_rate(args, "alpha");
  options.delta = required_rate(args, "delta");
  options.min_items = args.get_int("min-items", options.min_items, 1);
  const std::vector<JudgedItem> items = read_items(args.require("confidences"));
  const Calibration calibration = calibrate_threshold(items, options);
  std::optional<ThresholdOutcome> calibration_outcome, heldout;
  if (calibration.threshold) {
    calibration_outcome = evaluate_threshold(items, *calibration.threshold);
    if (auto path = args.get("heldout"))
      heldout = evaluate_threshold(read_items(*path), *calibration.threshold);
  }

  if (args.flag("json")) {
    json out = {{"alpha", options.alpha},
                {"delta", options.delta},
                {"min_items", options.min_items},
                {"threshold", calibration.threshold ? json(*calibration.threshold) : json()},
                {"tests", json::array()}};
    for (const auto& t : calibration.tests)
      out["tests"].push_back({{"threshold", t.threshold},
                              {"covered", t.covered},
                              {"disagreements", t.disagreements},
                              {"upper_bound", t.upper_bound},
                              {"accepted", t.accepted}});
    if (calibration_outcome) out["calibration"] = outcome_json(*calibration_outcome);
    if (heldout) out["heldout"] = outcome_json(*heldout);
    std::cout << out.dump() << "\n";
    return 0;
  }
  std::printf("%zu calibration items; alpha %g (agreement >= %g), delta %g, min %lld items\n",
              items.size(), options.alpha, 1 - options.alpha, options.delta,
              static_cast<long long>(options.min_items));
  if (!calibration.threshold) {
    if (calibration.tests.empty()) {
      std::printf("no threshold: fewer than %lld items in all\n",
                  static_cast<long long>(options.min_items));
    } else {
      const ThresholdTest& t = calibration.tests.front();
      std::printf(
          "no threshold: the strictest testable one (%g, %lld items, %lld disagreements) "
          "has disagreement bound %.4f > %g\n",
          t.threshold, static_cast<long long>(t.covered), static_cast<long long>(t.disagreements),
          t.upper_bound, options.alpha);
    }
    return 0;
  }
  const ThresholdTest& last =
      calibration.tests[calibration.tests.size() - (calibration.tests.back().accepted ? 1 : 2)];
  std::printf(
      "threshold %.6g: trusts %lld of %zu items (coverage %.4f), agreement %.4f, "
      "disagreement bound %.4f <= %g\n",
      *calibration.threshold, static_cast<long long>(calibration_outcome->covered), items.size(),
      calibration_outcome->coverage, calibration_outcome->agreement, last.upper_bound,
      options.alpha);
  if (!calibration.tests.back().accepted) {
    const ThresholdTest& t = calibration.tests.back();
    std::printf("next threshold %.6g failed: %lld items, bound %.4f > %g\n", t.threshold,
                static_cast<long long>(t.covered), t.upper_bound, options.alpha);
  }
  if (heldout)
    std::printf(
        "held-out: trusts %lld of %lld items (coverage %.4f), agreement %.4f (target >= %g)\n",
        static_cast<long long>(heldout->covered), static_cast<long long>(heldout->items),
        heldout->coverage, heldout->agreement, 1 - options.alpha);
  return 0;
}

}  // namespace flywheel::cli
