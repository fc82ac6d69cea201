// `flywheel arena rate --plot FILE.png`: the leaderboard drawn by gnuplot (Debian's gnuplot-nox,
// which scripts/install-deps.sh installs): each player's rating as a point with its 95%
// interval as error bars, best at the top.
#pragma once

#include <string>

#include "trainer/eval/leaderboard.h"

namespace flywheel::cli {

// Writes the PNG atomically (gnuplot draws into a temporary file beside it, renamed when it
// succeeded). UserError when gnuplot is missing or fails, with what it printed.
void plot_leaderboard(const Leaderboard& board, const std::string& png_path,
                      const std::string& title);

}  // namespace flywheel::cli
