// Reading values the way Jinja2's sandbox does: attribute and item lookups that fall back on
// each other and yield undefined rather than fail, Python slicing, iteration and len().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "trainer/text/jinja/value.h"

namespace flywheel::jinja {

// obj.name: a method of a str/list/dict first, then the dict key or object attribute.
// Error if obj is undefined; an undefined value if there is nothing by that name.
Value get_attribute(const Value& obj, const std::string& name);
// obj[key]: the element or key first, then (for a string key) the attribute.
Value get_item(const Value& obj, const Value& key);
// obj[start:stop:step] on a list, tuple or string (by code point); bounds None when absent.
Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step);
// "a.b.0" as filters take attribute=: a chain of get_item, numbers as indices.
Value get_path(const Value& obj, std::string_view path);

// The elements a for loop visits: list items, dict keys, a string's characters; none for
// undefined. Error for anything else.
std::vector<Value> iterate(const Value& v);
// len(): code points of a string, items, keys; 0 for undefined. Error for anything else.
int64_t length(const Value& v);

}  // namespace flywheel::jinja
