#include "trainer/text/jinja/json_dumps.h"

#include <cmath>

#include "trainer/text/jinja/pystr.h"
#include "trainer/text/jinja/sort.h"
#include "trainer/text/jinja/unicode.h"

namespace flywheel::jinja {

namespace {

// \uXXXX for a UTF-16 code unit.
void append_escape(std::string& out, char32_t unit) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4)
    out += kHex[(unit >> shift) & 0xF];
}

void append_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    const auto d = unicode::decode(s, i);
    const char32_t cp = d.cp;
    switch (cp) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (cp < 0x20 || (ensure_ascii && cp == 0x7F)) {
          append_escape(out, cp);
        } else if (!ensure_ascii || cp < 0x80) {
          out.append(s, i, d.len);
        } else if (cp < 0x10000) {
          append_escape(out, cp);
        } else {  // a UTF-16 surrogate pair, as Python writes it
          const char32_t v = cp - 0x10000;
          append_escape(out, 0xD800 + (v >> 10));
          append_escape(out, 0xDC00 + (v & 0x3FF));
        }
    }
    i += d.len;
  }
  out += '"';
}

std::string float_json(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  return pystr::float_repr(d);
}

class Dumper {
 public:
  explicit Dumper(const JsonStyle& style)
      : style_(style), item_separator_(style.item_separator.value_or(style.indent ? "," : ", ")) {}

  void dump(const Value& v, int depth) {
    if (depth > kMaxNesting) throw Error("value nested too deeply for tojson");
    switch (v.kind()) {
      case Value::Kind::None:
        out_ += "null";
        return;
      case Value::Kind::Bool:
        out_ += v.as_bool() ? "true" : "false";
        return;
      case Value::Kind::Int:
        out_ += std::to_string(v.as_int());
        return;
      case Value::Kind::Float:
        out_ += float_json(v.as_double());
        return;
      case Value::Kind::String:
        append_string(out_, v.as_string(), style_.ensure_ascii);
        return;
      case Value::Kind::List:
        dump_list(v.as_list().items, depth);
        return;
      case Value::Kind::Dict:
        dump_dict(v.as_dict(), depth);
        return;
      default:
        throw Error("Object of type " + v.type_name() + " is not JSON serializable");
    }
  }

  std::string take() { return std::move(out_); }

 private:
  // Python opens a line per item when indenting; a separator otherwise.
  void separate(bool first, int depth) {
    if (!first) out_ += item_separator_;
    newline(depth + 1);
  }
  void newline(int depth) {
    if (!style_.indent) return;
    out_ += '\n';
    for (int i = 0; i < depth; ++i)
      out_ += *style_.indent;
  }

  void dump_list(const std::vector<Value>& items, int depth) {
    if (items.empty()) {
      out_ += "[]";
      return;
    }
    out_ += '[';
    for (size_t i = 0; i < items.size(); ++i) {
      separate(i == 0, depth);
      dump(items[i], depth + 1);
    }
    newline(depth);
    out_ += ']';
  }

  static std::string key_text(const Value& key) {
    switch (key.kind()) {
      case Value::Kind::String:
        return key.as_string();
      case Value::Kind::None:
        return "null";
      case Value::Kind::Bool:
        return key.as_bool() ? "true" : "false";
      case Value::Kind::Int:
        return std::to_string(key.as_int());
      case Value::Kind::Float:
        return float_json(key.as_double());
      default:
        throw Error("keys must be str, int, float, bool or None, not " + key.type_name());
    }
  }

  void dump_dict(const DictData& d, int depth) {
    if (d.entries.empty()) {
      out_ += "{}";
      return;
    }
    std::vector<const std::pair<Value, Value>*> entries;
    for (const auto& e : d.entries)
      entries.push_back(&e);
    if (style_.sort_keys) {
      merge_sort(entries, [](const auto* x, const auto* y) { return less(x->first, y->first); });
    }
    out_ += '{';
    for (size_t i = 0; i < entries.size(); ++i) {
      separate(i == 0, depth);
      append_string(out_, key_text(entries[i]->first), style_.ensure_ascii);
      out_ += style_.key_separator;
      dump(entries[i]->second, depth + 1);
    }
    newline(depth);
    out_ += '}';
  }

  const JsonStyle& style_;
  std::string item_separator_;
  std::string out_;
};

}  // namespace

std::string json_dumps(const Value& v, const JsonStyle& style) {
  Dumper dumper(style);
  dumper.dump(v, 0);
  return dumper.take();
}

}  // namespace flywheel::jinja
