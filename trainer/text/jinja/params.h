// Binds a call's arguments to a Python-style parameter list, so that built-ins accept the
// same positional and keyword forms Jinja2's do:
//
//   Params p(args, "indent", {"width", "first", "blank"});  // indent(s, width=4, ...)
//   const int64_t width = p.integer(0, 4);
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "trainer/text/jinja/value.h"

namespace flywheel::jinja {

class Params {
 public:
  // Error on more positional arguments than names, or an unknown or repeated keyword.
  Params(const CallArgs& args, std::string_view function,
         std::initializer_list<std::string_view> names)
      : function_(function), values_(names.size(), nullptr) {
    if (args.positional.size() > names.size()) {
      throw Error(function_ + "() takes at most " + std::to_string(names.size()) +
                  " argument(s), got " + std::to_string(args.positional.size()));
    }
    for (size_t i = 0; i < args.positional.size(); ++i)
      values_[i] = &args.positional[i];
    for (const auto& [key, value] : args.keyword) {
      size_t i = 0;
      for (const std::string_view name : names) {
        if (name == key) break;
        ++i;
      }
      if (i == names.size()) {
        throw Error(function_ + "() got an unexpected keyword argument '" + key + "'");
      }
      if (values_[i] != nullptr) {
        throw Error(function_ + "() got multiple values for argument '" + key + "'");
      }
      values_[i] = &value;
    }
  }

  // The argument for parameter i; null when omitted (None counts as given).
  const Value* get(size_t i) const { return values_[i]; }
  bool has(size_t i) const { return values_[i] != nullptr; }
  Value value(size_t i, Value fallback) const { return has(i) ? *values_[i] : fallback; }
  bool flag(size_t i, bool fallback) const { return has(i) ? values_[i]->truthy() : fallback; }

  int64_t integer(size_t i, int64_t fallback) const {
    if (!has(i)) return fallback;
    if (!values_[i]->is_int()) type_error(i, "an integer");
    return values_[i]->as_int();
  }

  // Null when omitted or None.
  const std::string* string(size_t i) const {
    if (!has(i) || values_[i]->is_none()) return nullptr;
    if (!values_[i]->is_string()) type_error(i, "a string");
    return &values_[i]->as_string();
  }

  [[noreturn]] void type_error(size_t i, const std::string& expected) const {
    throw Error(function_ + "() argument " + std::to_string(i + 1) + " must be " + expected +
                ", not " + values_[i]->type_name());
  }

 private:
  std::string function_;
  std::vector<const Value*> values_;
};

}  // namespace flywheel::jinja
