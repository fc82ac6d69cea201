// libFuzzer target: the math and GSM8K checkers on arbitrary bytes. The input is split at its
// first NUL into a response and a ground truth (no NUL: the whole input against a fixed truth),
// and each side is also tried through extraction, normalization and comparison directly.
#include <cstddef>
#include <cstdint>
#include <string>

#include "verifiers/math_answer.h"
#include "verifiers/math_expr.h"
#include "verifiers/verifier.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  flywheel::VerifyInput row;
  row.response = input.substr(0, nul);
  row.ground_truth = nul == std::string::npos ? "\\frac{1}{2}" : input.substr(nul + 1);
  for (const char* name : {"math", "gsm8k"})
    (void)flywheel::verify(flywheel::find_verifier(name), row)
        .details.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  using namespace flywheel::verifiers;
  const std::string a = normalize_math_answer(row.response.substr(0, 4096));
  const std::string b = normalize_math_answer(row.ground_truth.substr(0, 4096));
  (void)compare_math_answers(a, b);
  (void)compare_math_answers(a, a);  // an answer that parses equals itself
  return 0;
}
