// Splits template source into text and the tokens inside {{ }} and {% %}, applying Jinja2's
// whitespace control on the way: "-" and "+" markers, trim_blocks, lstrip_blocks, and the
// removal of one trailing newline (keep_trailing_newline=False). Comments are dropped and
// {% raw %} bodies come out as text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "trainer/text/jinja/template.h"

namespace flywheel::jinja {

enum class TokenKind {
  Text,
  VariableBegin,  // {{
  VariableEnd,    // }}
  BlockBegin,     // {%
  BlockEnd,       // %}
  Name,
  String,  // text holds the decoded value
  Integer,
  Float,
  Operator,
  End,  // end of the template
};

struct Token {
  TokenKind kind;
  std::string text;
  int line;
  int64_t integer = 0;
  double number = 0;
};

// UserError "NAME:LINE: ..." on an unterminated tag, comment, string or raw block, or a
// character that starts no token.
std::vector<Token> tokenize(std::string_view source, const TemplateOptions& options,
                            const std::string& name);

}  // namespace flywheel::jinja
