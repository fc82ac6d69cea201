// The built-in filters, tests, methods and globals, looked up by name. Filters and tests are
// plain functions of their input and call arguments; the parser resolves them once.
#pragma once

#include <string_view>

#include "trainer/text/jinja/value.h"

namespace flywheel::jinja {

using FilterFn = Value (*)(const Value& input, CallArgs& args);
using TestFn = bool (*)(const Value& input, CallArgs& args);
using MethodFn = Value (*)(const Value& self, CallArgs& args);

FilterFn find_filter(std::string_view name);  // null when there is none
TestFn find_test(std::string_view name);
// A method of a str, list or dict, e.g. "abc".upper; null when `self` has no such method.
MethodFn find_method(const Value& self, std::string_view name);
// range, namespace, dict, raise_exception, strftime_now, joiner; null when none.
const Value* find_global(std::string_view name);

// Python's "%" formatting of a string: "%s and %d" % (a, b), or the `format` filter.
std::string percent_format(const std::string& format, const Value& args);

}  // namespace flywheel::jinja
