#include "trainer/text/jinja/operators.h"

#include <cmath>
#include <string>

namespace flywheel::jinja {

namespace {

const char* symbol(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add:
      return "+";
    case BinaryOp::Sub:
      return "-";
    case BinaryOp::Mul:
      return "*";
    case BinaryOp::Div:
      return "/";
    case BinaryOp::FloorDiv:
      return "//";
    case BinaryOp::Mod:
      return "%";
    case BinaryOp::Pow:
      return "**";
    case BinaryOp::Concat:
      return "~";
  }
  return "?";
}

[[noreturn]] void unsupported(BinaryOp op, const Value& a, const Value& b) {
  throw Error(std::string("unsupported operand type(s) for ") + symbol(op) + ": '" + a.type_name() +
              "' and '" + b.type_name() + "'");
}

// Using an undefined value in arithmetic is an error in Jinja2 (only ~ and printing are not).
void check_defined(const Value& v) {
  if (v.is_undefined()) throw Error(v.undefined_hint());
}

[[noreturn]] void overflow() {
  throw Error("integer overflow: the result does not fit in 64 bits");
}

int64_t checked_add(int64_t x, int64_t y) {
  int64_t r = 0;
  if (__builtin_add_overflow(x, y, &r)) overflow();
  return r;
}

int64_t checked_sub(int64_t x, int64_t y) {
  int64_t r = 0;
  if (__builtin_sub_overflow(x, y, &r)) overflow();
  return r;
}

int64_t checked_mul(int64_t x, int64_t y) {
  int64_t r = 0;
  if (__builtin_mul_overflow(x, y, &r)) overflow();
  return r;
}

int64_t int_pow(int64_t base, int64_t exponent) {
  int64_t result = 1;
  while (exponent > 0) {
    if (exponent & 1) result = checked_mul(result, base);
    exponent >>= 1;
    if (exponent > 0) base = checked_mul(base, base);
  }
  return result;
}

Value repeat(const Value& seq, int64_t times) {
  if (times < 0) times = 0;
  if (seq.is_string()) {
    const std::string& s = seq.as_string();
    if (!s.empty() && static_cast<uint64_t>(times) > kMaxStringBytes / s.size()) {
      throw Error("string repetition longer than " + std::to_string(kMaxStringBytes) + " bytes");
    }
    std::string out;
    out.reserve(s.size() * static_cast<size_t>(times));
    for (int64_t i = 0; i < times; ++i)
      out += s;
    return Value(std::move(out));
  }
  const ListData& l = seq.as_list();
  if (!l.items.empty() && static_cast<uint64_t>(times) > kMaxItems / l.items.size()) {
    throw Error("list repetition longer than " + std::to_string(kMaxItems) + " items");
  }
  std::vector<Value> out;
  for (int64_t i = 0; i < times; ++i)
    out.insert(out.end(), l.items.begin(), l.items.end());
  return l.is_tuple ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

std::string concat_strings(const std::string& a, const std::string& b) {
  if (a.size() + b.size() > kMaxStringBytes) {
    throw Error("string longer than " + std::to_string(kMaxStringBytes) + " bytes");
  }
  return a + b;
}

Value arithmetic(BinaryOp op, const Value& a, const Value& b) {
  if (a.is_int() && b.is_int()) {
    const int64_t x = a.as_int(), y = b.as_int();
    switch (op) {
      case BinaryOp::Add:
        return Value(checked_add(x, y));
      case BinaryOp::Sub:
        return Value(checked_sub(x, y));
      case BinaryOp::Mul:
        return Value(checked_mul(x, y));
      case BinaryOp::Div:
        if (y == 0) throw Error("division by zero");
        return Value(static_cast<double>(x) / static_cast<double>(y));
      case BinaryOp::FloorDiv:
      case BinaryOp::Mod: {
        if (y == 0) throw Error(op == BinaryOp::Mod ? "modulo by zero" : "division by zero");
        if (x == INT64_MIN && y == -1) {
          if (op == BinaryOp::FloorDiv) overflow();
          return Value(int64_t{0});
        }
        int64_t q = x / y, m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) --q, m += y;  // floor, as Python
        return Value(op == BinaryOp::Mod ? m : q);
      }
      case BinaryOp::Pow:
        if (y >= 0) return Value(int_pow(x, y));
        if (x == 0) throw Error("0 cannot be raised to a negative power");
        return Value(std::pow(static_cast<double>(x), static_cast<double>(y)));
      default:
        break;
    }
  }
  const double x = a.as_double(), y = b.as_double();
  switch (op) {
    case BinaryOp::Add:
      return Value(x + y);
    case BinaryOp::Sub:
      return Value(x - y);
    case BinaryOp::Mul:
      return Value(x * y);
    case BinaryOp::Div:
      if (y == 0) throw Error("float division by zero");
      return Value(x / y);
    case BinaryOp::FloorDiv:
      if (y == 0) throw Error("float floor division by zero");
      return Value(float_floordiv(x, y));
    case BinaryOp::Mod:
      if (y == 0) throw Error("float modulo");
      return Value(float_mod(x, y));
    case BinaryOp::Pow:
      if (x == 0 && y < 0) throw Error("0.0 cannot be raised to a negative power");
      if (x < 0 && std::floor(y) != y) {
        throw Error("a negative number cannot be raised to a fractional power");
      }
      return Value(std::pow(x, y));
    default:
      unsupported(op, a, b);
  }
}

}  // namespace

double float_mod(double a, double b) {
  double mod = std::fmod(a, b);
  if (mod != 0) {
    if ((b < 0) != (mod < 0)) mod += b;
  } else {
    mod = std::copysign(0.0, b);
  }
  return mod;
}

double float_floordiv(double a, double b) {
  const double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0 && (b < 0) != (mod < 0)) div -= 1.0;
  if (div == 0) return std::copysign(0.0, a / b);
  double floor_div = std::floor(div);
  if (div - floor_div > 0.5) floor_div += 1.0;
  return floor_div;
}

Value binary_op(BinaryOp op, const Value& a, const Value& b) {
  if (op == BinaryOp::Concat) return Value(concat_strings(a.str(), b.str()));
  check_defined(a);
  check_defined(b);
  if (a.is_number() && b.is_number()) return arithmetic(op, a, b);
  if (op == BinaryOp::Add) {
    if (a.is_string() && b.is_string()) return Value(concat_strings(a.as_string(), b.as_string()));
    if (a.is_sequence() && b.is_sequence() && a.as_list().is_tuple == b.as_list().is_tuple) {
      const auto &x = a.as_list().items, &y = b.as_list().items;
      if (x.size() + y.size() > kMaxItems) throw Error("list longer than the item limit");
      std::vector<Value> items(x);
      items.insert(items.end(), y.begin(), y.end());
      return a.as_list().is_tuple ? Value::tuple(std::move(items)) : Value::list(std::move(items));
    }
  }
  if (op == BinaryOp::Mul) {
    if ((a.is_string() || a.is_sequence()) && b.is_int()) return repeat(a, b.as_int());
    if (a.is_int() && (b.is_string() || b.is_sequence())) return repeat(b, a.as_int());
  }
  if (op == BinaryOp::Mod && a.is_string()) return Value(percent_format(a.as_string(), b));
  unsupported(op, a, b);
}

bool compare_op(CompareOp op, const Value& a, const Value& b) {
  switch (op) {
    case CompareOp::Eq:
      return equal(a, b);
    case CompareOp::Ne:
      return !equal(a, b);
    case CompareOp::In:
      return contains(b, a);
    case CompareOp::NotIn:
      return !contains(b, a);
    default:
      break;
  }
  check_defined(a);
  check_defined(b);
  switch (op) {
    case CompareOp::Lt:
      return less(a, b);
    case CompareOp::Gt:
      return less(b, a);
    case CompareOp::Le:  // for the types we have, <= is exactly "< or ==" (NaN is neither)
      return less(a, b) || equal(a, b);
    default:
      return less(b, a) || equal(a, b);
  }
}

Value negate(const Value& v) {
  check_defined(v);
  if (v.is_int()) {
    if (v.as_int() == INT64_MIN) overflow();
    return Value(-v.as_int());
  }
  if (v.is(Value::Kind::Float)) return Value(-v.as_double());
  throw Error("bad operand type for unary -: '" + v.type_name() + "'");
}

Value unary_plus(const Value& v) {
  check_defined(v);
  if (v.is(Value::Kind::Bool)) return Value(v.as_int());
  if (v.is_number()) return v;
  throw Error("bad operand type for unary +: '" + v.type_name() + "'");
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::String:
      if (!item.is_string()) {
        throw Error("'in <string>' requires string as left operand, not " + item.type_name());
      }
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::List:
      for (const auto& v : container.as_list().items) {
        if (equal(v, item)) return true;
      }
      return false;
    case Value::Kind::Dict:
      return container.as_dict().find(item) != nullptr;
    case Value::Kind::Undefined:  // iterates as empty
      return false;
    default:
      throw Error("argument of type '" + container.type_name() + "' is not iterable");
  }
}

}  // namespace flywheel::jinja
