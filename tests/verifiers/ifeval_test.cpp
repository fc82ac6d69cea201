// IFEval: the hand-written case table (tests/data/verifiers/ifeval_cases.jsonl; every instruction
// type, strict and loose, labels derived from the reference implementation's semantics), the
// verdict, bad rows, and the reference's own prompts run through every checker without error.
#include <gtest/gtest.h>

#include <set>

#include "tests/verifiers/case_table.h"
#include "trainer/core/error.h"
#include "verifiers/ifeval.h"
#include "verifiers/ifeval_text.h"
#include "verifiers/verifier.h"

namespace flywheel::verifiers {
namespace {

TEST(Ifeval, CaseTableCoversEveryInstructionInBothModes) {
  const auto rows = testing::read_jsonl(testing::verifier_cases("ifeval_cases.jsonl"));
  std::set<std::string> covered;
  for (const auto& row : rows) {
    const auto ids = row["instruction_id_list"].get<std::vector<std::string>>();
    const std::vector<nlohmann::json> kwargs(row["kwargs"].begin(), row["kwargs"].end());
    const IfevalResult r = ifeval_evaluate(ids, kwargs, row["response"].get<std::string>());
    EXPECT_EQ(r.strict, row["strict"].get<std::vector<bool>>()) << row["why"] << ": " << row.dump();
    EXPECT_EQ(r.loose, row["loose"].get<std::vector<bool>>()) << row["why"] << ": " << row.dump();
    covered.insert(ids.begin(), ids.end());
  }
  for (const auto& id : ifeval_instruction_ids())
    EXPECT_TRUE(covered.count(id)) << id << " has no case";
  EXPECT_EQ(ifeval_instruction_ids().size(), 25u);
}

TEST(Ifeval, VerdictIsAllInstructionsStrict) {
  VerifyInput input;
  input.response = "Hello, world.";
  input.fields = {{"instruction_id_list", {"punctuation:no_comma", "startend:end_checker"}},
                  {"kwargs", {nlohmann::json::object(), {{"end_phrase", "world."}}}}};
  const Verdict v = verify(find_verifier("ifeval"), input);
  EXPECT_EQ(v.correct, false);
  EXPECT_DOUBLE_EQ(v.details["fraction"].get<double>(), 0.5);
  input.response = "Hello world.";
  EXPECT_EQ(verify(find_verifier("ifeval"), input).correct, true);
}

// RLVR rows in open-instruct's format carry the instructions JSON-encoded in ground_truth.
TEST(Ifeval, InstructionsInTheGroundTruth) {
  VerifyInput input;
  input.response = "all lower case, with a comma";
  input.ground_truth = R"({"instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]})";
  EXPECT_EQ(verify(find_verifier("ifeval"), input).correct, false);
  input.response = "all lower case without one";
  EXPECT_EQ(verify(find_verifier("ifeval"), input).correct, true);
}

TEST(Ifeval, BadRowsAreNotApplicable) {
  VerifyInput input;
  input.response = "text";
  EXPECT_FALSE(verify(find_verifier("ifeval"), input).correct.has_value());
  input.fields = {{"instruction_id_list", {"no:such"}}, {"kwargs", {nlohmann::json::object()}}};
  const Verdict unknown = verify(find_verifier("ifeval"), input);
  EXPECT_FALSE(unknown.correct.has_value());
  EXPECT_NE(unknown.details["reason"].get<std::string>().find("no:such"), std::string::npos);
  input.fields = {{"instruction_id_list", {"length_constraints:number_words"}},
                  {"kwargs", {{{"num_words", 5}, {"relation", "more than"}}}}};
  EXPECT_FALSE(verify(find_verifier("ifeval"), input).correct.has_value());
  EXPECT_THROW(ifeval_follows("keywords:existence", nlohmann::json::object(), "x"), UserError);
}

TEST(Ifeval, TextMeasures) {
  EXPECT_EQ(count_sentences(""), 0u);
  EXPECT_EQ(count_sentences("One. Two! Three?"), 3u);
  EXPECT_EQ(count_sentences("Mr. Smith went to Washington. He liked it."), 2u);
  EXPECT_EQ(count_capital_words("NASA and the USA, I think."), 3u);
  EXPECT_EQ(detect_language("Ceci est une phrase en français, écrite pour tester la détection."),
            std::string("fr"));
}

// Every prompt of the reference data, with its own prompt text as the response: every kwargs
// set is understood (no row is "not applicable") and nothing throws.
TEST(Ifeval, ReferenceInputsAreAllUnderstood) {
  const std::string path = testing::shared_dir() + "/data/ifeval/input_data.jsonl";
  FLYWHEEL_REQUIRE_PATH(path);
  const auto rows = testing::read_jsonl(path);
  ASSERT_EQ(rows.size(), 541u);
  for (const auto& row : rows) {
    VerifyInput input;
    input.response = row["prompt"];
    input.fields = row;
    const Verdict v = verify(find_verifier("ifeval"), input);
    EXPECT_TRUE(v.correct.has_value()) << row["key"] << ": " << v.details.dump();
  }
}

}  // namespace
}  // namespace flywheel::verifiers
