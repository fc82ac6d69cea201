// A stable merge sort that stays in bounds whatever `less` answers. std::sort may run past
// the range when the comparison is not a strict weak order, which NaN or a template's odd
// values can make it.
#pragma once

#include <algorithm>
#include <utility>
#include <vector>

namespace flywheel::jinja {

template <typename T, typename Less>
void merge_sort(std::vector<T>& v, Less less) {
  const size_t n = v.size();
  std::vector<T> merged(n);
  for (size_t width = 1; width < n; width *= 2) {
    for (size_t lo = 0; lo < n; lo += 2 * width) {
      const size_t mid = std::min(lo + width, n), hi = std::min(lo + 2 * width, n);
      size_t i = lo, j = mid, k = lo;
      // The left run wins ties, which keeps equal elements in their original order.
      while (i < mid && j < hi)
        merged[k++] = std::move(less(v[j], v[i]) ? v[j++] : v[i++]);
      while (i < mid)
        merged[k++] = std::move(v[i++]);
      while (j < hi)
        merged[k++] = std::move(v[j++]);
    }
    v.swap(merged);
  }
}

}  // namespace flywheel::jinja
