// GuardedCommand: the command `raftlockctl lock NAME -- CMD...` runs while it
// holds the lock, and stops when the session is lost.
//
// raftlockctl is the command's child subreaper (PR_SET_CHILD_SUBREAPER): every
// process the command starts stays its descendant, even once its own parent
// has exited, unless it makes itself another subreaper's. So a loss of the
// session signals all of them, not only the process raftlockctl forked (a
// pipeline, a shell's background job), and whatever is still running when the
// command exits is killed before the lock is released.
//
// Off a terminal the command gets its own process group, which forwarded
// signals reach as a whole. On a terminal it stays in raftlockctl's process
// group, the terminal's foreground: it can read and configure the terminal,
// and the terminal's Ctrl-C and Ctrl-Z reach it (and raftlockctl) directly.
// Not covered: a job stopped past its session's loss (Ctrl-Z, then `fg` after
// the TTL) is continued by the shell before raftlockctl can stop it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "raftlock/status.h"

namespace raftlock::ctl {

class GuardedCommand {
 public:
  // How long StopOnLoss waits for the command to exit after SIGKILL.
  static constexpr std::chrono::milliseconds kAfterSigkill{250};

  GuardedCommand(std::string lock_name, std::chrono::milliseconds kill_after)
      : lock_name_(std::move(lock_name)), kill_after_(kill_after) {}

  // Spawns `command` with `env` added to raftlockctl's environment, unless the
  // session is lost or reports loss by `lost_at` (Session::lost_at), which
  // has passed. False if it was not started (then lost(), or the program
  // could not be run: that is reported on stderr).
  bool Start(const std::vector<std::string>& command,
             const std::vector<std::pair<std::string, std::string>>& env, Deadline lost_at);

  // Passes a signal raftlockctl received on to the command, unless it has
  // exited or the signal came from the terminal, which signalled the command
  // already (`from_terminal`). Thread-safe; for ForwardSignalsTo.
  void Forward(int signal, bool from_terminal);

  // Waits until the command exits (reaping the orphans the subreaper adopts
  // meanwhile), then kills every descendant it left running. Does not reap
  // the command, so that no signal can reach a reaped (and maybe reused) pid.
  // Precondition: Start() returned true; call once.
  void AwaitExit();
  // Reaps the exited command and returns its wait status. Precondition:
  // AwaitExit() returned.
  int Reap();

  // The session is lost: SIGTERM, then SIGKILL after kill_after, to the
  // command and every descendant; returns once the command has exited and
  // its descendants are killed (or kAfterSigkill after SIGKILL): within
  // kill_after + kAfterSigkill. Runs on the session's thread, which revokes
  // the lease only after it returns.
  void StopOnLoss();

  bool lost() const;

 private:
  // Sends `signal` to the command and to every descendant of raftlockctl.
  // Requires mu_.
  void SignalAllLocked(int signal);
  // The command exited: kills its descendants and wakes StopOnLoss.
  void Exited();

  const std::string lock_name_;
  const std::chrono::milliseconds kill_after_;
  mutable std::mutex mu_;
  bool lost_ = false;    // guarded by mu_
  bool exited_ = false;  // guarded by mu_
  pid_t pid_ = -1;       // set under mu_ by Start(), then fixed
  // The command has its own process group (off a terminal).
  bool own_group_ = false;
  CancellationToken exited_token_;
};

}  // namespace raftlock::ctl
