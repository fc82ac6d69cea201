// Every error a template can cause reaches the user as "NAME:LINE: what went wrong".
#pragma once

#include <string>

#include "trainer/core/error.h"

namespace flywheel::jinja {

inline UserError located_error(const std::string& name, int line, const std::string& what) {
  return UserError(name + ":" + std::to_string(line) + ": " + what);
}

}  // namespace flywheel::jinja
