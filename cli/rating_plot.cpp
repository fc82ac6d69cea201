#include "cli/rating_plot.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "trainer/core/error.h"

namespace flywheel::cli {
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

}  // namespace

void plot_leaderboard(const Leaderboard& board, const std::string& png_path,
                      const std::string& title) {
  const fs::path target(png_path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  if (!fs::is_directory(dir)) throw UserError("--plot: no directory " + dir.string());
  // A private folder for gnuplot's data and script, under TMPDIR like every temporary file.
  std::string scratch_name = (fs::temp_directory_path() / "flywheel-plot-XXXXXX").string();
  if (mkdtemp(scratch_name.data()) == nullptr)
    throw UserError("--plot: cannot make a temporary folder in " +
                    fs::temp_directory_path().string());
  const fs::path scratch(scratch_name);
  const fs::path partial = dir / ("." + target.filename().string() + ".partial.png");
  try {
    // Rows best first, one a line: position, rating, lower, upper, "name" (gnuplot reads a
    // double-quoted column as one string; a name's own double quotes become single ones).
    std::ofstream data(scratch / "ratings.dat");
    for (size_t i = 0; i < board.rows.size(); ++i) {
      const auto& r = board.rows[i];
      std::string name = r.name;
      for (auto& c : name)
        if (c == '"') c = '\'';
      const double lower = std::isnan(r.lower) ? r.rating : r.lower;
      const double upper = std::isnan(r.upper) ? r.rating : r.upper;
      data << i << " " << r.rating << " " << lower << " " << upper << " \"" << name << "\"\n";
    }
    data.close();
    const int height = 120 + 28 * static_cast<int>(board.rows.size());
    std::ofstream script(scratch / "plot.gp");
    script << "set terminal pngcairo size 900," << height << " font 'sans,10'\n"
           << "set output " << quoted(partial.string()) << "\n"
           << "set title " << quoted(title) << "\n"
           << "set xlabel 'rating (95% interval)'\n"
           << "set yrange [" << board.rows.size() - 0.4 << ":-0.6]\n"  // the best on top
           << "set grid xtics\nunset key\n"
           << "plot " << quoted((scratch / "ratings.dat").string())
           << " using 2:1:3:4:ytic(5) with xerrorbars pt 7 ps 1.2 lc rgb '#1f77b4'\n";
    script.close();
    const std::string command = "gnuplot " + quoted((scratch / "plot.gp").string()) + " 2>" +
                                quoted((scratch / "gnuplot.err").string());
    const int status = std::system(command.c_str());
    if (status != 0) {
      const std::string said = read_all(scratch / "gnuplot.err");
      if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        throw UserError("--plot needs gnuplot (scripts/install-deps.sh installs gnuplot-nox)");
      }
      throw UserError("--plot: gnuplot failed: " + said);
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

}  // namespace flywheel::cli
