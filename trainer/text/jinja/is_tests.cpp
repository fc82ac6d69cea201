// The tests of `x is name(args)`, and of select/reject: defined, none, string, equalto, ...
#include "trainer/text/jinja/builtins.h"
#include "trainer/text/jinja/operators.h"
#include "trainer/text/jinja/unicode.h"

namespace flywheel::jinja {

namespace {

using Kind = Value::Kind;

// Adapters from plain predicates to TestFn, checking the argument count.
template <bool (*Predicate)(const Value&)>
bool unary(const Value& v, CallArgs& args) {
  if (!args.positional.empty() || !args.keyword.empty())
    throw Error("this test takes no arguments");
  return Predicate(v);
}

template <bool (*Predicate)(const Value&, const Value&)>
bool binary(const Value& v, CallArgs& args) {
  if (args.positional.size() != 1 || !args.keyword.empty()) {
    throw Error("this test takes exactly one argument");
  }
  return Predicate(v, args.positional[0]);
}

bool defined(const Value& v) {
  return !v.is_undefined();
}
bool undefined(const Value& v) {
  return v.is_undefined();
}
bool none(const Value& v) {
  return v.is_none();
}
bool boolean(const Value& v) {
  return v.is(Kind::Bool);
}
bool is_false(const Value& v) {
  return v.is(Kind::Bool) && !v.as_bool();
}
bool is_true(const Value& v) {
  return v.is(Kind::Bool) && v.as_bool();
}
bool integer(const Value& v) {
  return v.is(Kind::Int);
}  // not bool, as Jinja2 has it
bool is_float(const Value& v) {
  return v.is(Kind::Float);
}
bool number(const Value& v) {
  return v.is_number();
}
bool string(const Value& v) {
  return v.is_string();
}
bool mapping(const Value& v) {
  return v.is(Kind::Dict);
}
// Jinja2's Undefined defines __call__ (to fail), so Python calls it callable.
bool callable(const Value& v) {
  return v.is(Kind::Function) || v.is_undefined();
}
// Python's iter() and len() accept these; Jinja2's Undefined is an empty sequence.
bool iterable(const Value& v) {
  return v.is_string() || v.is(Kind::List) || v.is(Kind::Dict) || v.is_undefined();
}

bool divisibleby(const Value& v, const Value& divisor) {
  return equal(binary_op(BinaryOp::Mod, v, divisor), Value(0));
}
bool odd(const Value& v) {
  return equal(binary_op(BinaryOp::Mod, v, Value(2)), Value(1));
}
bool even(const Value& v) {
  return divisibleby(v, Value(2));
}

bool eq(const Value& v, const Value& o) {
  return equal(v, o);
}
bool ne(const Value& v, const Value& o) {
  return !equal(v, o);
}
bool lt(const Value& v, const Value& o) {
  return compare_op(CompareOp::Lt, v, o);
}
bool le(const Value& v, const Value& o) {
  return compare_op(CompareOp::Le, v, o);
}
bool gt(const Value& v, const Value& o) {
  return compare_op(CompareOp::Gt, v, o);
}
bool ge(const Value& v, const Value& o) {
  return compare_op(CompareOp::Ge, v, o);
}
bool in(const Value& v, const Value& container) {
  return contains(container, v);
}

// str.islower / str.isupper: some cased character, and none of the other case.
bool has_case(const Value& v, bool want_lower) {
  const std::string s = v.str();
  bool cased = false;
  for (size_t i = 0; i < s.size();) {
    const auto d = unicode::decode(s, i);
    if (want_lower ? unicode::is_upper(d.cp) : unicode::is_lower(d.cp)) return false;
    cased = cased || (want_lower ? unicode::is_lower(d.cp) : unicode::is_upper(d.cp));
    i += d.len;
  }
  return cased;
}
bool lower(const Value& v) {
  return has_case(v, true);
}
bool upper(const Value& v) {
  return has_case(v, false);
}

// Python's `is`: one object for containers, the same constant for everything else.
bool sameas(const Value& v, const Value& o) {
  if (v.kind() != o.kind()) return false;
  if (v.identity() != nullptr && !v.is_string()) return v.identity() == o.identity();
  return equal(v, o);
}

bool escaped(const Value&) {
  return false;
}  // no Markup strings without autoescaping
bool filter(const Value& v) {
  return v.is_string() && find_filter(v.as_string()) != nullptr;
}
bool test(const Value& v) {
  return v.is_string() && find_test(v.as_string()) != nullptr;
}

struct NamedTest {
  std::string_view name;
  TestFn fn;
};

constexpr NamedTest kTests[] = {
    {"!=", binary<ne>},
    {"<", binary<lt>},
    {"<=", binary<le>},
    {"==", binary<eq>},
    {">", binary<gt>},
    {">=", binary<ge>},
    {"boolean", unary<boolean>},
    {"callable", unary<callable>},
    {"defined", unary<defined>},
    {"divisibleby", binary<divisibleby>},
    {"eq", binary<eq>},
    {"equalto", binary<eq>},
    {"escaped", unary<escaped>},
    {"even", unary<even>},
    {"false", unary<is_false>},
    {"filter", unary<filter>},
    {"float", unary<is_float>},
    {"ge", binary<ge>},
    {"greaterthan", binary<gt>},
    {"gt", binary<gt>},
    {"in", binary<in>},
    {"integer", unary<integer>},
    {"iterable", unary<iterable>},
    {"le", binary<le>},
    {"lessthan", binary<lt>},
    {"lower", unary<lower>},
    {"lt", binary<lt>},
    {"mapping", unary<mapping>},
    {"ne", binary<ne>},
    {"none", unary<none>},
    {"number", unary<number>},
    {"odd", unary<odd>},
    {"sameas", binary<sameas>},
    {"sequence", unary<iterable>},
    {"string", unary<string>},
    {"test", unary<test>},
    {"true", unary<is_true>},
    {"undefined", unary<undefined>},
    {"upper", unary<upper>},
};

}  // namespace

TestFn find_test(std::string_view name) {
  for (const auto& t : kTests) {
    if (t.name == name) return t.fn;
  }
  return nullptr;
}

}  // namespace flywheel::jinja
