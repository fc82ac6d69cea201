// The built-in filters, in two groups: filters_text.cpp (strings and numbers) and
// filters_sequence.cpp (lists and dicts). find_filter (builtins.h) asks both.
#pragma once

#include <string_view>

#include "trainer/text/jinja/builtins.h"

namespace flywheel::jinja {

FilterFn find_text_filter(std::string_view name);
FilterFn find_sequence_filter(std::string_view name);

}  // namespace flywheel::jinja
