// The `flywheel` subcommands. Each takes the arguments after its name and returns the exit
// status; user errors are thrown as UserError and turned into status 2 by main().
#pragma once

#include <string>
#include <vector>

namespace flywheel::cli {

int run_generate(const std::vector<std::string>& argv);
int run_inspect(const std::vector<std::string>& argv);
int run_plan(const std::vector<std::string>& argv);
int run_train(const std::vector<std::string>& argv);
int run_quickstart_data(const std::vector<std::string>& argv);
int run_quickstart(const std::vector<std::string>& argv);
int run_make_pairs(const std::vector<std::string>& argv);
int run_verify(const std::vector<std::string>& argv);
int run_eval(const std::vector<std::string>& argv);
int run_eval_rm(const std::vector<std::string>& argv);
int run_template(const std::vector<std::string>& argv);
int run_tokenize(const std::vector<std::string>& argv);
int run_arena(const std::vector<std::string>& argv);  // dispatches to the arena_* below
int run_arena_answer(const std::vector<std::string>& argv);
int run_arena_judge(const std::vector<std::string>& argv);
int run_arena_mine(const std::vector<std::string>& argv);
int run_arena_flywheel(const std::vector<std::string>& argv);
int run_arena_rate(const std::vector<std::string>& argv);
int run_arena_winrate(const std::vector<std::string>& argv);
int run_arena_calibrate(const std::vector<std::string>& argv);
int run_decontaminate(const std::vector<std::string>& argv);

}  // namespace flywheel::cli
