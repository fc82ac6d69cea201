// Untrusted text never crashes a verifier: deeply nested braces, megabyte responses, invalid
// UTF-8, inputs that are quadratic or exponential for naive scanners and backtracking regexes.
// Every verifier and every IFEval instruction gets each input; each call must return a verdict
// whose details serialize as JSON. The slowest call is printed (the suite's timeout is the
// bound: performance targets live in bench/, not in assertions).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "tests/verifiers/case_table.h"
#include "verifiers/ifeval.h"
#include "verifiers/verifier.h"

namespace flywheel::verifiers {
namespace {

std::string repeat(const std::string& s, size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (size_t i = 0; i < n; ++i)
    out += s;
  return out;
}

std::vector<std::pair<std::string, std::string>> adversarial_inputs() {
  constexpr size_t kMB = 1 << 20;
  return {
      {"nested braces", "\\boxed{" + repeat("{", 200000) + repeat("}", 200000) + "}"},
      {"nested text", "\\boxed{" + repeat("\\text{", 1300) + "x" + repeat("}", 1300) + "}"},
      {"nested fractions", "\\boxed{" + repeat("\\frac{1}{", 1300) + "2" + repeat("}", 1300) + "}"},
      {"nested sqrt", "\\boxed{" + repeat("\\sqrt{", 1000) + "2" + repeat("}", 1000) + "}"},
      {"unclosed boxes", repeat("\\boxed{", 100000)},
      {"huge powers",
       "\\boxed{10^{10^{10^{10}}}+(x+1)^{64}\\cdot(\\sqrt{2}+\\sqrt{3}+\\sqrt{5})^{60}}"},
      {"many surds", "\\boxed{" + repeat("\\sqrt{999999999989}+", 300) + "1}"},
      {"megabyte of digits", std::string(kMB, '9')},
      {"megabyte of text", repeat("The answer is 42, and that is final. ", kMB / 37)},
      {"invalid utf-8", "\\boxed{\xff\xfe\xc3\x28 \xe2\x82} the answer is \xf0\x90\x28\xbc"},
      {"newlines", std::string(kMB, '\n')},
      {"open brackets", std::string(kMB, '[')},
      {"title openers", repeat("<<", kMB / 2)},
      {"stars", std::string(kMB, '*')},
      {"star runs", repeat("*a", kMB / 2)},
      {"section words", repeat("SECTION ", kMB / 8)},
      {"separators", repeat("***\n", kMB / 4)},
      {"nul bytes", std::string(1000, '\0') + "\\boxed{1}"},
      {"think tags", repeat("<think>", 100000) + repeat("</think>", 100000)},
  };
}

TEST(VerifierHardening, AdversarialInputsGetVerdicts) {
  // Every IFEval instruction at once, with kwargs from the reference data's shapes.
  const nlohmann::json ifeval_fields = {
      {"instruction_id_list", ifeval_instruction_ids()},
      {"kwargs", [] {
         nlohmann::json all = nlohmann::json::array();
         for (const auto& id : ifeval_instruction_ids()) {
           nlohmann::json k = nlohmann::json::object();
           if (id == "change_case:capital_word_frequency")
             k = {{"capital_frequency", 3}, {"capital_relation", "at least"}};
           if (id == "combination:repeat_prompt") k = {{"prompt_to_repeat", "Repeat this"}};
           if (id == "detectable_content:number_placeholders") k = {{"num_placeholders", 2}};
           if (id == "detectable_content:postscript") k = {{"postscript_marker", "P.P.S"}};
           if (id == "detectable_format:multiple_sections")
             k = {{"section_spliter", "SECTION"}, {"num_sections", 2}};
           if (id == "detectable_format:number_bullet_lists") k = {{"num_bullets", 3}};
           if (id == "detectable_format:number_highlighted_sections") k = {{"num_highlights", 2}};
           if (id == "keywords:existence") k = {{"keywords", {"answer"}}};
           if (id == "keywords:forbidden_words") k = {{"forbidden_words", {"final"}}};
           if (id == "keywords:frequency")
             k = {{"keyword", "the"}, {"frequency", 2}, {"relation", "less than"}};
           if (id == "keywords:letter_frequency")
             k = {{"letter", "a"}, {"let_frequency", 2}, {"let_relation", "at least"}};
           if (id == "language:response_language") k = {{"language", "en"}};
           if (id == "length_constraints:nth_paragraph_first_word")
             k = {{"num_paragraphs", 2}, {"nth_paragraph", 1}, {"first_word", "the"}};
           if (id == "length_constraints:number_paragraphs") k = {{"num_paragraphs", 2}};
           if (id == "length_constraints:number_sentences")
             k = {{"num_sentences", 3}, {"relation", "at least"}};
           if (id == "length_constraints:number_words")
             k = {{"num_words", 3}, {"relation", "less than"}};
           if (id == "startend:end_checker") k = {{"end_phrase", "final."}};
           all.push_back(k);
         }
         return all;
       }()}};
  const std::vector<std::string> truths = {"42", "\\frac{1}{2}", "(1,2)"};
  double slowest = 0;
  std::string slowest_name;
  for (const auto& [name, text] : adversarial_inputs()) {
    for (const auto& verifier : all_verifiers()) {
      VerifyInput input;
      input.response = text;
      input.ground_truth = verifier.name == "math" ? "\\frac{1}{2}" : "42";
      if (verifier.name == "ifeval") input.fields = ifeval_fields;
      const auto start = std::chrono::steady_clock::now();
      const Verdict v = verify(verifier, input);
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      EXPECT_NO_THROW((void)v.details.dump()) << name << " / " << verifier.name;
      if (verifier.name != "arithmetic") {
        EXPECT_TRUE(v.correct.has_value())
            << name << " / " << verifier.name << ": "
            << v.details.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      }
      if (seconds > slowest) slowest = seconds, slowest_name = name + " / " + verifier.name;
    }
    // The adversarial text as a ground truth too.
    VerifyInput input;
    input.response = "\\boxed{1}";
    input.ground_truth = text;
    EXPECT_NO_THROW((void)verify(find_verifier("math"), input).details.dump()) << name;
  }
  std::printf("slowest verification: %.3f s (%s)\n", slowest, slowest_name.c_str());
}

// A verification past its time limit stops at the next unit of work and is judged incorrect.
TEST(VerifierHardening, TimeLimit) {
  VerifyInput input;
  input.response = repeat("One more sentence. ", 50000);
  input.fields = {{"instruction_id_list", {"length_constraints:number_sentences"}},
                  {"kwargs", {{{"num_sentences", 3}, {"relation", "at least"}}}}};
  VerifyOptions options;
  options.time_limit_seconds = 1e-9;
  const Verdict v = verify(find_verifier("ifeval"), input, options);
  EXPECT_EQ(v.correct, false);
  EXPECT_NE(v.details["reason"].get<std::string>().find("time limit"), std::string::npos);
  options.time_limit_seconds = 0;  // no limit
  EXPECT_EQ(verify(find_verifier("ifeval"), input, options).correct, true);
}

}  // namespace
}  // namespace flywheel::verifiers
