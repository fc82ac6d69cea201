#include "trainer/text/jinja/template.h"

#include <new>

#include "trainer/text/jinja/interpreter.h"
#include "trainer/text/jinja/lexer.h"
#include "trainer/text/jinja/location.h"
#include "trainer/text/jinja/parser.h"

namespace flywheel::jinja {

Template::Template(const std::string& source, std::string name, TemplateOptions options)
    : name_(std::move(name)), program_(parse(tokenize(source, options, name_), name_)) {}

std::string Template::render(const nlohmann::ordered_json& context) const {
  try {
    Interpreter interpreter(*program_, name_);
    return interpreter.render(context);
  } catch (const std::bad_alloc&) {
    throw UserError(name_ + ": out of memory while rendering the template");
  }
}

}  // namespace flywheel::jinja
