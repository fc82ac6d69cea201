// Online Elo, as Chatbot Arena's compute_elo (fastchat/serve/monitor/elo_analysis.py): every
// player starts at `init`, and the battles are replayed in log order, each moving both sides by
// k (S - E), where S is 1, ½ or 0 and E = 1 / (1 + base^((R_other - R) / scale)). A battle of
// weight w is replayed w times in a row, as Arena-Hard repeats its strong verdicts. Unlike the
// Bradley–Terry fit the result depends on the order, and recent battles weigh more.
#pragma once

#include <vector>

#include "trainer/eval/battles.h"
#include "trainer/eval/bradley_terry.h"

namespace flywheel {

struct OnlineEloOptions {
  EloScale elo;
  double k = 4;
};

std::vector<double> online_elo(const BattleLog& log, const OnlineEloOptions& options);

}  // namespace flywheel
