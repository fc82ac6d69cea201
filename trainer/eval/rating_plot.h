// Rating plots drawn by gnuplot (Debian's gnuplot-nox, which scripts/install-deps.sh installs):
// the leaderboard (`flywheel arena rate --plot`), and a training run's ratings by step (the
// arena inside a run, trainer/arena/run_arena.h). Each PNG is written atomically: gnuplot draws
// into a temporary file beside it, renamed when it succeeded.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/eval/leaderboard.h"

namespace flywheel {

// Each player's rating as a point with its 95% interval as error bars, best at the top.
// `what` names the setting that asked for the plot in errors ("--plot"). UserError when gnuplot
// is missing or fails, with what it printed.
void plot_leaderboard(const Leaderboard& board, const std::string& png_path,
                      const std::string& title, const std::string& what = "--plot");

// A run's checkpoints: rating against step with the intervals as error bars, joined by a line;
// each fixed player (a baseline) a horizontal line at its rating. Errors as plot_leaderboard.
struct StepRating {
  int64_t step = 0;
  LeaderboardRow row;
};
void plot_ratings_by_step(const std::vector<StepRating>& steps,
                          const std::vector<LeaderboardRow>& fixed, const std::string& png_path,
                          const std::string& title, const std::string& what);

// Whether gnuplot can be run here (checked before a run that will plot).
bool gnuplot_available();

}  // namespace flywheel
