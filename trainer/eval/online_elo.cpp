#include "trainer/eval/online_elo.h"

#include <cmath>

namespace flywheel {

std::vector<double> online_elo(const BattleLog& log, const OnlineEloOptions& options) {
  const EloScale& e = options.elo;
  std::vector<double> rating(log.players().size(), e.init);
  for (const Battle& b : log.battles()) {
    const double s = b.winner == Winner::kA ? 1.0 : b.winner == Winner::kB ? 0.0 : 0.5;
    for (int rep = 0; rep < b.weight; ++rep) {
      const double expected = 1 / (1 + std::pow(e.base, (rating[b.b] - rating[b.a]) / e.scale));
      const double update = options.k * (s - expected);
      rating[b.a] += update;
      rating[b.b] -= update;
    }
  }
  return rating;
}

}  // namespace flywheel
