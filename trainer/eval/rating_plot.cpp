#include "trainer/eval/rating_plot.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "trainer/core/error.h"

namespace flywheel {
namespace {

namespace fs = std::filesystem;

// A gnuplot single-quoted string: only the quote itself needs escaping (doubled).
std::string quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text)
    out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::string read_all(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A name as one double-quoted gnuplot data column (its own double quotes become single ones).
std::string data_name(std::string name) {
  for (auto& c : name)
    if (c == '"') c = '\'';
  return "\"" + name + "\"";
}

// Runs gnuplot on the script `body(data_dir, partial_png)` writes after the terminal and output
// lines, then renames the picture into place. Everything else lives in a private folder under
// TMPDIR, removed afterwards.
void run_gnuplot(const std::string& png_path, int width, int height, const std::string& what,
                 const std::function<void(const fs::path& scratch, std::ostream& script)>& body) {
  const fs::path target(png_path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  if (!fs::is_directory(dir)) throw UserError(what + ": no directory " + dir.string());
  std::string scratch_name = (fs::temp_directory_path() / "flywheel-plot-XXXXXX").string();
  if (mkdtemp(scratch_name.data()) == nullptr)
    throw UserError(what + ": cannot make a temporary folder in " +
                    fs::temp_directory_path().string());
  const fs::path scratch(scratch_name);
  const fs::path partial = dir / ("." + target.filename().string() + ".partial.png");
  try {
    std::ofstream script(scratch / "plot.gp");
    script << "set terminal pngcairo size " << width << "," << height << " font 'sans,10'\n"
           << "set output " << quoted(partial.string()) << "\n";
    body(scratch, script);
    script.close();
    const std::string command = "gnuplot " + quoted((scratch / "plot.gp").string()) + " 2>" +
                                quoted((scratch / "gnuplot.err").string());
    const int status = std::system(command.c_str());
    if (status != 0) {
      const std::string said = read_all(scratch / "gnuplot.err");
      if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        throw UserError(what + " needs gnuplot (scripts/install-deps.sh installs gnuplot-nox)");
      }
      throw UserError(what + ": gnuplot failed: " + said);
    }
    fs::rename(partial, target);
  } catch (...) {
    std::error_code ignored;
    fs::remove(partial, ignored);
    fs::remove_all(scratch, ignored);
    throw;
  }
  fs::remove_all(scratch);
}

double or_rating(double bound, double rating) {
  return std::isnan(bound) ? rating : bound;
}

}  // namespace

bool gnuplot_available() {
  return std::system("gnuplot --version >/dev/null 2>&1") == 0;
}

void plot_leaderboard(const Leaderboard& board, const std::string& png_path,
                      const std::string& title, const std::string& what) {
  const int height = 120 + 28 * static_cast<int>(board.rows.size());
  run_gnuplot(png_path, 900, height, what, [&](const fs::path& scratch, std::ostream& script) {
    // Rows best first, one a line: position, rating, lower, upper, "name".
    std::ofstream data(scratch / "ratings.dat");
    for (size_t i = 0; i < board.rows.size(); ++i) {
      const auto& r = board.rows[i];
      data << i << " " << r.rating << " " << or_rating(r.lower, r.rating) << " "
           << or_rating(r.upper, r.rating) << " " << data_name(r.name) << "\n";
    }
    script << "set title " << quoted(title) << "\n"
           << "set xlabel 'rating (95% interval)'\n"
           << "set yrange [" << board.rows.size() - 0.4 << ":-0.6]\n"  // the best on top
           << "set grid xtics\nunset key\n"
           << "plot " << quoted((scratch / "ratings.dat").string())
           << " using 2:1:3:4:ytic(5) with xerrorbars pt 7 ps 1.2 lc rgb '#1f77b4'\n";
  });
}

void plot_ratings_by_step(const std::vector<StepRating>& steps,
                          const std::vector<LeaderboardRow>& fixed, const std::string& png_path,
                          const std::string& title, const std::string& what) {
  run_gnuplot(png_path, 900, 520, what, [&](const fs::path& scratch, std::ostream& script) {
    std::ofstream data(scratch / "steps.dat");
    for (const auto& s : steps) {
      data << s.step << " " << s.row.rating << " " << or_rating(s.row.lower, s.row.rating) << " "
           << or_rating(s.row.upper, s.row.rating) << "\n";
    }
    data.close();
    script << "set title " << quoted(title) << "\n"
           << "set xlabel 'step'\nset ylabel 'rating (95% interval)'\n"
           << "set grid\nset key outside right top\n"
           // Room around the points, so that a baseline level with one stays in sight.
           << "set offsets graph 0.03, graph 0.03, graph 0.08, graph 0.08\n";
    // Each baseline: a labelled horizontal line across the plot.
    script << "plot " << quoted((scratch / "steps.dat").string())
           << " using 1:2:3:4 with yerrorlines pt 7 ps 1.2 lc rgb '#1f77b4' title 'checkpoints'";
    const char* colours[] = {"#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};
    for (size_t i = 0; i < fixed.size(); ++i) {
      script << ", " << fixed[i].rating << " with lines dt 2 lc rgb '" << colours[i % 6]
             << "' title " << quoted(fixed[i].name);
    }
    script << "\n";
  });
}

}  // namespace flywheel
