// Minimal fork/exec helpers for tests that need a real process.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace raftlock::storage::testing {

// A running child with its stdout and stderr on pipes.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv) {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
      throw std::runtime_error("pipe");
    }
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork");
    if (pid_ == 0) {
      ::dup2(out[1], STDOUT_FILENO);
      ::dup2(err[1], STDERR_FILENO);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      _exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    out_ = out[0];
    err_ = err[0];
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      Wait();
    }
    ::close(out_);
    ::close(err_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // Reads stdout/stderr into the buffers until `deadline` or EOF on both (or,
  // with `until_stdout`, until stdout has any data).
  void Pump(std::chrono::steady_clock::time_point deadline, bool until_stdout = false) {
    bool out_open = true, err_open = true;
    while (out_open || err_open) {
      if (until_stdout && !stdout_.empty()) return;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            deadline - std::chrono::steady_clock::now())
                            .count();
      if (left <= 0) return;
      pollfd fds[2] = {{out_open ? out_ : -1, POLLIN, 0}, {err_open ? err_ : -1, POLLIN, 0}};
      if (::poll(fds, 2, static_cast<int>(left)) <= 0) continue;
      char buf[4096];
      if (fds[0].revents) {
        ssize_t n = ::read(out_, buf, sizeof(buf));
        if (n <= 0)
          out_open = false;
        else
          stdout_.append(buf, static_cast<size_t>(n));
      }
      if (fds[1].revents) {
        ssize_t n = ::read(err_, buf, sizeof(buf));
        if (n <= 0)
          err_open = false;
        else
          stderr_.append(buf, static_cast<size_t>(n));
      }
    }
  }

  void Kill() { ::kill(pid_, SIGKILL); }

  // Waits for exit; returns the raw wait status.
  int Wait() {
    int status = 0;
    if (pid_ > 0) {
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      pid_ = -1;
      status_ = status;
    }
    return status_;
  }

  const std::string& out() const { return stdout_; }
  const std::string& err() const { return stderr_; }

 private:
  pid_t pid_ = -1;
  int out_ = -1, err_ = -1;
  int status_ = 0;
  std::string stdout_, stderr_;
};

struct RunResult {
  int exit_code = -1;  // -1 when killed by a signal
  std::string out, err;
};

// Runs to completion (at most `timeout`), collecting output.
inline RunResult Run(const std::vector<std::string>& argv,
                     std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  Child c(argv);
  c.Pump(std::chrono::steady_clock::now() + timeout);
  int st = c.Wait();
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, c.out(), c.err()};
}

}  // namespace raftlock::storage::testing
