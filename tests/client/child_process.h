// ChildProcess: runs a program (raftlockctl, an example) as a child of the
// test with its stdout and stderr captured in files, so a test can read its
// output while it runs, signal it, and wait for its exit with a timeout. The
// destructor stops a child that is still running (SIGTERM, which raftlockctl
// forwards to the command it runs; SIGKILL after 3 s), so a hung or failing
// test never leaves one behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace raftlock::testing {

class ChildProcess {
 public:
  // Starts `argv` (argv[0] is a path) with `env` added to the test's environment
  // (and `unset` names removed from it).
  explicit ChildProcess(std::vector<std::string> argv,
                        std::vector<std::pair<std::string, std::string>> env = {},
                        std::vector<std::string> unset = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Waits up to `timeout` for the exit; the exit code (128+N if killed by
  // signal N), or nullopt if it is still running.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  void Signal(int signal) const;
  bool Exited() const { return exited_; }
  // Everything written so far.
  std::string Stdout() const;
  std::string Stderr() const;
  // Waits until stdout contains `text`; false on timeout or exit without it.
  bool WaitForOutput(const std::string& text, std::chrono::milliseconds timeout);
  // The same for stderr.
  bool WaitForStderr(const std::string& text, std::chrono::milliseconds timeout);

 private:
  bool WaitForText(std::string (ChildProcess::*read)() const, const std::string& text,
                   std::chrono::milliseconds timeout);

  pid_t pid_ = -1;
  bool exited_ = false;
  int code_ = -1;
  std::string dir_;
};

// The result of running a program to completion.
struct RunResult {
  int code = -1;  // -1: killed after the timeout
  std::string out;
  std::string err;
};

// Runs a program and waits up to `timeout` (then kills it: code -1).
RunResult Run(std::vector<std::string> argv,
              std::vector<std::pair<std::string, std::string>> env = {},
              std::chrono::milliseconds timeout = std::chrono::seconds(20));

}  // namespace raftlock::testing
