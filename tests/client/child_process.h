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

// TerminalProcess: runs a program on a new pseudo-terminal as a job of a
// minimal job-control shell, so that a test can type into it (Ctrl-C is
// "\x03", Ctrl-Z "\x1a") and read what is written there (stdout and stderr,
// with the terminal's echo). The shell, the session's leader, prints
// "[job PID]" when it starts the job in the terminal's foreground; when the
// job stops, "[job stopped]" and "[job continued]" as it continues the job in
// the foreground at once (as `fg` would); "[job exited N]" when it ends. It then stays, so that
// its exit (and the terminal's hangup) does not touch what the job left
// behind. The destructor kills the job's group and the shell.
class TerminalProcess {
 public:
  explicit TerminalProcess(std::vector<std::string> argv);
  ~TerminalProcess();
  TerminalProcess(const TerminalProcess&) = delete;
  TerminalProcess& operator=(const TerminalProcess&) = delete;

  void Type(const std::string& text);
  // Everything written to the terminal so far.
  std::string Output();
  // Waits until the output contains `text`; false on timeout.
  bool WaitForOutput(const std::string& text, std::chrono::milliseconds timeout);
  // The job's pid (and process group), once "[job PID]" was printed; else -1.
  pid_t JobPid();
  // Waits up to `timeout` for the job's exit; its code (128+N if killed by
  // signal N), or nullopt if it still runs.
  std::optional<int> Wait(std::chrono::milliseconds timeout);

 private:
  pid_t shell_ = -1;
  int terminal_ = -1;  // the pseudo-terminal's master side
  std::string output_;
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
