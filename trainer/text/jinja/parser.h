// Jinja2's grammar, by recursive descent over the lexer's tokens, with Jinja2's precedence:
// conditional < or < and < not < comparisons and `in` < + - < ~ < * / // % < ** < unary
// minus < filters and tests < attribute, subscript, call.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "trainer/text/jinja/ast.h"
#include "trainer/text/jinja/lexer.h"

namespace flywheel::jinja {

// UserError "NAME:LINE: ..." on a syntax error, an unclosed or stray block tag, an unknown
// filter or test, a statement Jinja2 has but chat templates cannot use ({% include %}, ...),
// or nesting past the depth the interpreter allows.
std::unique_ptr<Program> parse(std::vector<Token> tokens, const std::string& name);

}  // namespace flywheel::jinja
