// Python's json.dumps, which Hugging Face's tojson filter calls as
// json.dumps(x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys):
// ", " and ": " between items by default ("," and ": " once indenting), non-ASCII text kept
// as is, floats as repr() writes them, dict keys in insertion order.
#pragma once

#include <optional>
#include <string>

#include "trainer/text/jinja/value.h"

namespace flywheel::jinja {

struct JsonStyle {
  bool ensure_ascii = false;
  std::optional<std::string> indent;          // one level of indentation; none: a single line
  std::optional<std::string> item_separator;  // default ", ", or "," when indenting
  std::string key_separator = ": ";
  bool sort_keys = false;
};

// Error for a value JSON cannot hold (undefined, a namespace, a macro), as Python's
// TypeError "Object of type X is not JSON serializable".
std::string json_dumps(const Value& v, const JsonStyle& style);

}  // namespace flywheel::jinja
