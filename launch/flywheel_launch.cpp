// flywheel-launch: starts the ranks of a data-parallel job on this node, torchrun-style.
//
//   flywheel-launch --nproc-per-node N [--nnodes M --node-rank R --master-addr A
//                   --master-port P] [--max-restarts K] [--program PATH] -- train RECIPE ...
//
// Each rank is `flywheel` (next to this binary, or --program) run with the arguments after
// `--` and the variables torchrun sets (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE,
// GROUP_RANK, MASTER_ADDR, MASTER_PORT, TORCHELASTIC_RESTART_COUNT; OMP_NUM_THREADS = cores / N
// unless set). Every output line is prefixed with its rank. SIGINT / SIGTERM are forwarded.
// When a rank exits abnormally the others are stopped (SIGTERM, then SIGKILL after
// --stop-timeout seconds) and the launcher exits non-zero, naming the rank and its status —
// or, with --max-restarts, starts the group again with --resume so training continues from
// the latest checkpoint.
//
// Deliberately free of LibTorch: it only manages processes.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kUserErrorExit = 2;

constexpr const char* kUsage =
    "Usage: flywheel-launch --nproc-per-node N [options] -- FLYWHEEL_ARGS...\n"
    "\n"
    "Starts N ranks of `flywheel FLYWHEEL_ARGS...` on this node with torchrun's variables.\n"
    "\n"
    "Options:\n"
    "  --nproc-per-node N   ranks on this node (required)\n"
    "  --nnodes M           nodes in the job (default 1)\n"
    "  --node-rank R        this node's index, 0..M-1 (default 0)\n"
    "  --master-addr A      host of rank 0's rendezvous store (default 127.0.0.1)\n"
    "  --master-port P      its port (default 29500)\n"
    "  --max-restarts K     restart the group up to K times after a failure, resuming from\n"
    "                       the latest checkpoint (default 0)\n"
    "  --stop-timeout S     seconds between SIGTERM and SIGKILL when stopping ranks (default 5)\n"
    "  --program PATH       the binary to run (default: flywheel next to flywheel-launch)\n";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Options {
  int nproc = 0;
  int nnodes = 1;
  int node_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  int max_restarts = 0;
  int stop_timeout_s = 5;
  std::string program;
  std::vector<std::string> args;  // after --
};

int parse_int(const std::string& flag, const std::string& value, int min, int max) {
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || errno != 0 || x < min || x > max) {
    throw UsageError(flag + " '" + value + "': expected an integer in [" + std::to_string(min) +
                     ", " + std::to_string(max) + "]");
  }
  return static_cast<int>(x);
}

Options parse(int argc, char** argv) {
  Options o;
  int i = 1;
  for (; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--") break;
    if (flag == "-h" || flag == "--help") {
      std::cout << kUsage;
      std::exit(0);
    }
    std::string value;
    if (const auto eq = flag.find('='); eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag.resize(eq);
    } else {
      if (i + 1 >= argc) throw UsageError(flag + ": missing value");
      value = argv[++i];
    }
    if (flag == "--nproc-per-node") {
      o.nproc = parse_int(flag, value, 1, 1024);
    } else if (flag == "--nnodes") {
      o.nnodes = parse_int(flag, value, 1, 65536);
    } else if (flag == "--node-rank") {
      o.node_rank = parse_int(flag, value, 0, 65535);
    } else if (flag == "--master-addr") {
      o.master_addr = value;
    } else if (flag == "--master-port") {
      o.master_port = parse_int(flag, value, 1, 65535);
    } else if (flag == "--max-restarts") {
      o.max_restarts = parse_int(flag, value, 0, 1000);
    } else if (flag == "--stop-timeout") {
      o.stop_timeout_s = parse_int(flag, value, 0, 3600);
    } else if (flag == "--program") {
      o.program = value;
    } else {
      throw UsageError("unknown option " + flag);
    }
  }
  if (o.nproc == 0) throw UsageError("--nproc-per-node is required");
  if (o.node_rank >= o.nnodes) throw UsageError("--node-rank must be below --nnodes");
  if (i >= argc) throw UsageError("expected -- followed by the flywheel arguments");
  o.args.assign(argv + i + 1, argv + argc);
  if (o.args.empty()) throw UsageError("nothing to run after --");
  if (o.program.empty()) {
    o.program =
        (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "flywheel").string();
  }
  if (access(o.program.c_str(), X_OK) != 0) {
    throw UsageError("cannot execute " + o.program + " (use --program)");
  }
  return o;
}

// Signals arrive through a self-pipe, so the poll loop handles them like any other event.
int g_signal_pipe[2] = {-1, -1};

void on_signal(int sig) {
  const int saved = errno;
  const unsigned char byte = static_cast<unsigned char>(sig);
  [[maybe_unused]] const auto n = write(g_signal_pipe[1], &byte, 1);
  errno = saved;
}

void install_signal_handlers() {
  if (pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("pipe2 failed");
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGINT, SIGTERM, SIGCHLD})
    sigaction(sig, &sa, nullptr);
}

struct Rank {
  int rank = 0;
  int local_rank = 0;
  pid_t pid = -1;
  int out = -1;         // read end of its stdout+stderr
  std::string partial;  // an unfinished output line
  bool running = false;
  int status = 0;  // waitpid status once it has exited
};

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return "was killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
  }
  return "stopped";
}

bool failed(int status) {
  return !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}

// Our exit status for a failed rank: its own, or 128 + the signal that killed it.
int exit_code(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void emit(const Rank& r, const std::string& line) {
  const std::string out = "[rank " + std::to_string(r.rank) + "] " + line + "\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
}

void say(const std::string& text) {
  std::fprintf(stderr, "flywheel-launch: %s\n", text.c_str());
  std::fflush(stderr);
}

class Group {
 public:
  Group(const Options& o, int attempt) : o_(o) {
    const int world = o.nnodes * o.nproc;
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    std::vector<std::string> args = o.args;
    // A restart continues from the latest checkpoint.
    if (attempt > 0 && args.front() == "train" &&
        std::find(args.begin(), args.end(), "--resume") == args.end()) {
      args.push_back("--resume");
    }
    for (int i = 0; i < o.nproc; ++i) {
      Rank r;
      r.local_rank = i;
      r.rank = o.node_rank * o.nproc + i;
      int fds[2];
      if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
      const pid_t pid = fork();
      if (pid < 0) throw std::runtime_error("fork failed");
      if (pid == 0) {
        // Its own process group: a terminal's Ctrl-C reaches the launcher, which forwards it,
        // and stopping a rank stops anything it started.
        setpgid(0, 0);
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        auto set = [](const char* k, const std::string& v) { setenv(k, v.c_str(), 1); };
        set("RANK", std::to_string(r.rank));
        set("LOCAL_RANK", std::to_string(i));
        set("WORLD_SIZE", std::to_string(world));
        set("LOCAL_WORLD_SIZE", std::to_string(o.nproc));
        set("GROUP_RANK", std::to_string(o.node_rank));
        set("MASTER_ADDR", o.master_addr);
        set("MASTER_PORT", std::to_string(o.master_port));
        set("TORCHELASTIC_RESTART_COUNT", std::to_string(attempt));
        if (std::getenv("OMP_NUM_THREADS") == nullptr) {
          set("OMP_NUM_THREADS", std::to_string(std::max(1u, cores / o.nproc)));
        }
        std::vector<char*> argv;
        argv.push_back(const_cast<char*>(o.program.c_str()));
        for (auto& a : args)
          argv.push_back(a.data());
        argv.push_back(nullptr);
        execv(o.program.c_str(), argv.data());
        std::fprintf(stderr, "cannot execute %s: %s\n", o.program.c_str(), std::strerror(errno));
        _exit(127);
      }
      setpgid(pid, pid);  // also from the parent, so it holds before we ever signal it
      close(fds[1]);
      r.pid = pid;
      r.out = fds[0];
      r.running = true;
      say("started rank " + std::to_string(r.rank) + " (pid " + std::to_string(pid) + ")");
      ranks_.push_back(std::move(r));
    }
  }

  // Runs until every rank has exited. Returns the index of the first rank that failed, -1 when
  // all succeeded; *interrupted is set when the launcher itself was told to stop.
  int wait(int* interrupted) {
    int first_failure = -1;
    auto deadline = std::chrono::steady_clock::time_point::max();
    while (any_running() || any_open()) {
      std::vector<pollfd> fds{{g_signal_pipe[0], POLLIN, 0}};
      for (auto& r : ranks_)
        if (r.out >= 0) fds.push_back({r.out, POLLIN, 0});
      const int n = poll(fds.data(), fds.size(), 200);
      if (n < 0 && errno != EINTR) throw std::runtime_error("poll failed");
      if (fds[0].revents & POLLIN) {
        unsigned char sig = 0;
        while (read(g_signal_pipe[0], &sig, 1) == 1) {
          if ((sig == SIGINT || sig == SIGTERM) && *interrupted == 0) {
            *interrupted = sig;
            say(std::string("received ") + strsignal(sig) + "; forwarding it to every rank");
            signal_all(sig);
            deadline = stop_deadline();
          }
        }
      }
      for (size_t k = 1; k < fds.size(); ++k) {
        if (fds[k].revents & (POLLIN | POLLHUP | POLLERR)) drain(fds[k].fd);
      }
      reap();
      if (first_failure < 0 && *interrupted == 0) {
        first_failure = pick_failure();
        if (first_failure >= 0) {
          const auto& r = ranks_[static_cast<size_t>(first_failure)];
          say("rank " + std::to_string(r.rank) + " (pid " + std::to_string(r.pid) + ") " +
              describe_status(r.status) + "; stopping the other ranks");
          signal_all(SIGTERM);
          deadline = stop_deadline();
        }
      }
      if (std::chrono::steady_clock::now() > deadline && any_running()) {
        say("ranks still running " + std::to_string(o_.stop_timeout_s) +
            " s after SIGTERM; sending SIGKILL");
        signal_all(SIGKILL);
        deadline = std::chrono::steady_clock::time_point::max();
      }
    }
    return first_failure;
  }

  const Rank& rank(int k) const { return ranks_[static_cast<size_t>(k)]; }

 private:
  std::chrono::steady_clock::time_point stop_deadline() const {
    return std::chrono::steady_clock::now() + std::chrono::seconds(o_.stop_timeout_s);
  }
  // The rank whose failure brought the job down, among those that have exited: one killed by
  // a signal over one that exited with an error (the others usually fail because of it),
  // then the lowest rank. -1 when none has failed.
  int pick_failure() const {
    int best = -1;
    for (size_t k = 0; k < ranks_.size(); ++k) {
      const auto& r = ranks_[k];
      if (r.running || !failed(r.status)) continue;
      if (best < 0 || (WIFSIGNALED(r.status) && !WIFSIGNALED(ranks_[best].status))) {
        best = static_cast<int>(k);
      }
    }
    return best;
  }
  bool any_running() const {
    return std::any_of(ranks_.begin(), ranks_.end(), [](const Rank& r) { return r.running; });
  }
  bool any_open() const {
    return std::any_of(ranks_.begin(), ranks_.end(), [](const Rank& r) { return r.out >= 0; });
  }
  void signal_all(int sig) {
    for (auto& r : ranks_)
      if (r.running) kill(-r.pid, sig);
  }
  void reap() {
    for (auto& r : ranks_) {
      if (!r.running) continue;
      int status = 0;
      if (waitpid(r.pid, &status, WNOHANG) == r.pid) {
        r.running = false;
        r.status = status;
      }
    }
  }
  void drain(int fd) {
    for (auto& r : ranks_) {
      if (r.out != fd) continue;
      char buf[65536];
      const ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0) {
        if (!r.partial.empty()) emit(r, r.partial);
        r.partial.clear();
        close(r.out);
        r.out = -1;
        return;
      }
      r.partial.append(buf, static_cast<size_t>(n));
      size_t start = 0;
      for (size_t nl; (nl = r.partial.find('\n', start)) != std::string::npos; start = nl + 1) {
        emit(r, r.partial.substr(start, nl - start));
      }
      r.partial.erase(0, start);
    }
  }

  const Options& o_;
  std::vector<Rank> ranks_;
};

int run(const Options& o) {
  install_signal_handlers();
  for (int attempt = 0;; ++attempt) {
    Group group(o, attempt);
    int interrupted = 0;
    const int failure = group.wait(&interrupted);
    if (interrupted != 0) return 128 + interrupted;
    if (failure < 0) return 0;
    const auto& r = group.rank(failure);
    if (attempt < o.max_restarts) {
      say("restarting all ranks from the latest checkpoint (restart " +
          std::to_string(attempt + 1) + " of " + std::to_string(o.max_restarts) + ")");
      continue;
    }
    say("job failed: rank " + std::to_string(r.rank) + " " + describe_status(r.status));
    const int code = exit_code(r.status);
    return code != 0 ? code : 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const UsageError& e) {
    std::cerr << "flywheel-launch: error: " << e.what() << "\n\n" << kUsage;
    return kUserErrorExit;
  } catch (const std::exception& e) {
    std::cerr << "flywheel-launch: internal error: " << e.what() << "\n";
    return 1;
  }
}
