// Python's arithmetic, comparison and membership on Values, as Jinja2 evaluates them:
// 7 / 2 is 3.5, 7 // 2 is 3, -7 // 2 is -4, -7 % 3 is 2, "ab" * 2 is "abab". Integers are
// 64-bit (Python's are unbounded): overflow is an Error, not a wrap.
#pragma once

#include "trainer/text/jinja/ast.h"
#include "trainer/text/jinja/value.h"

namespace flywheel::jinja {

Value binary_op(BinaryOp op, const Value& a, const Value& b);
bool compare_op(CompareOp op, const Value& a, const Value& b);
Value negate(const Value& v);
Value unary_plus(const Value& v);
// `item in container`: a substring, a list element, a dict key.
bool contains(const Value& container, const Value& item);

// Python's float // and %, which round toward negative infinity.
double float_floordiv(double a, double b);
double float_mod(double a, double b);

}  // namespace flywheel::jinja
