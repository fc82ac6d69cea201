# The rule-based verifiers' sources and the system libraries they use, shared by the main build
# (verifiers/CMakeLists.txt) and the sanitizer / fuzzer build (tests/verifiers/standalone),
# which compiles them without torch.
set(FLYWHEEL_VERIFIER_SOURCES
  arithmetic.cpp
  batch.cpp
  deadline.cpp
  format_reward.cpp
  gsm8k.cpp
  ifeval.cpp
  ifeval_text.cpp
  math_answer.cpp
  math_expr.cpp
  math_value.cpp
  math_verifier.cpp
  rational.cpp
  registry.cpp
  text.cpp
  unicode_text.cpp
)

# ICU (code point categories and case), RE2 (linear-time regular expressions for format
# rules) and CLD2 (language identification): Debian's libicu-dev, libre2-dev and libcld2-dev,
# in place of the NLTK and langdetect the IFEval reference uses.
find_package(PkgConfig REQUIRED)
pkg_check_modules(ICU REQUIRED IMPORTED_TARGET icu-uc)
pkg_check_modules(RE2 REQUIRED IMPORTED_TARGET re2)
find_library(CLD2_LIBRARY NAMES cld2 REQUIRED)
set(FLYWHEEL_VERIFIER_LIBRARIES PkgConfig::ICU PkgConfig::RE2 ${CLD2_LIBRARY})
