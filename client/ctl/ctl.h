// raftlockctl internals: the options every command shares, exit codes, output.
#pragma once

#include <google/protobuf/message.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "raftlock/client.h"
#include "raftlock/session.h"
#include "raftlock/status.h"

namespace raftlock::ctl {

// Exit codes (also printed by --help).
enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,        // any other failure (NOT_FOUND, FAILED_PRECONDITION, ...)
  kExitBadInput = 2,     // usage error or INVALID_ARGUMENT
  kExitNotAcquired = 3,  // busy / not elected / token not valid
  kExitTimeout = 4,      // not acquired / not done within --timeout
  kExitUnavailable = 5,  // no replica or no leader reachable
  kExitSessionLost = 6,  // the session was lost while holding (child stopped)
};
const char* ExitCodesHelp();

struct Globals {
  std::string endpoints;
  std::string output = "table";
  std::string timeout;  // "" = the command's default
  bool verbose = false;

  bool json() const { return output == "json"; }
};

// Parses "500ms", "2s", "1.5s", "3m", "1h", or a bare number of seconds.
std::optional<std::chrono::milliseconds> ParseDuration(const std::string& text);

// The --timeout value, or `fallback` when it was not given. nullopt (after
// printing an error) when it does not parse.
std::optional<std::chrono::milliseconds> TimeoutOr(const Globals& globals,
                                                   std::chrono::milliseconds fallback);

// Prints "raftlockctl: <what>: <status>" to stderr and returns its exit code.
int Fail(const std::string& what, const absl::Status& status);
int ExitCodeFor(const absl::Status& status);

// A connected Client for --endpoints; nullptr after printing an error.
std::shared_ptr<Client> Connect(const Globals& globals);

// ---- output
std::string ToJson(const google::protobuf::Message& message);
// `text` as a JSON string literal, quotes included. Bytes that are not
// well-formed UTF-8 (election values are bytes) each print as U+FFFD.
std::string JsonString(const std::string& text);
// Prints rows as an aligned table (the first row is the header).
void PrintTable(const std::vector<std::vector<std::string>>& rows);

// ---- interruption: SIGINT / SIGTERM / SIGHUP are blocked in every thread and
// delivered to a watcher thread, which cancels Interrupted() and passes the
// signal to the forwarder, if any.
void InstallSignalWatcher();
CancellationToken Interrupted();
// Called by a command that checks Interrupted() itself (lock, elect, observe,
// lease keepalive). For any other command an interrupt exits the process at
// once with 128 + the signal number; the replicas then cancel its call.
void WatchInterrupts();
// Where the watcher passes signals, on its thread, with whether the terminal
// sent it (Ctrl-C: its whole foreground process group got it); empty: nowhere.
void ForwardSignalsTo(std::function<void(int signal, bool from_terminal)> forward);
int LastSignal();

// A lock / elect command from granting its session to holding: an interrupt
// while the lease is granted exits 130 at once (a lease granted meanwhile
// expires after its TTL); while acquiring, it revokes the lease and exits 130.
// From Hold() on, interrupts are the command's to handle. Register it first.
class AcquirePhase {
 public:
  explicit AcquirePhase(std::shared_ptr<Client> client);
  // The session is open: interrupts now revoke `lease`.
  void Acquiring(uint64_t lease);
  // The lock or leadership is held. Does not return if an interrupt is already
  // exiting the process.
  void Hold();

 private:
  struct State;
  std::shared_ptr<State> state_;  // shared with the Interrupted() callback
};

// ---- sessions for lock / elect
// What a holder does when its session is lost: `stop` runs on the session's
// thread before the session revokes its lease, and may take up to
// `stop_time`, which is added to the session's safety margin so that the
// lease cannot expire on the server before the guarded work has stopped.
struct OnSessionLoss {
  std::function<void()> stop;
  std::chrono::milliseconds stop_time{0};
};

// Grants a session's lease (the session warns on stderr when in jeopardy);
// nullptr with *exit_code set after printing the error. `stop_flag` names the
// flag that set on_loss.stop_time, for the error when the TTL is too short.
std::unique_ptr<Session> OpenSession(const std::shared_ptr<Client>& client,
                                     std::chrono::milliseconds ttl, Deadline deadline,
                                     int* exit_code, OnSessionLoss on_loss = {},
                                     const std::string& stop_flag = "");

// ---- commands (each returns the process exit code)
struct LockArgs {
  std::string name;
  bool shared = false;
  uint32_t permits = 0;
  std::string ttl = "10s";
  std::string kill_after = "500ms";
  std::vector<std::string> command;
};
int CmdLock(const Globals& g, const LockArgs& args);

int CmdLeaseGrant(const Globals& g, const std::string& ttl);
int CmdLeaseKeepAlive(const Globals& g, uint64_t lease, bool once);
int CmdLeaseRevoke(const Globals& g, uint64_t lease);
int CmdLeaseTtl(const Globals& g, uint64_t lease);
int CmdLeaseList(const Globals& g);

int CmdLocksList(const Globals& g, const std::string& prefix);
int CmdLocksDescribe(const Globals& g, const std::string& name);
int CmdLocksValidate(const Globals& g, const std::string& name, uint64_t token);
int CmdLocksAcquire(const Globals& g, const std::string& name, uint64_t lease, bool shared,
                    uint32_t permits);
int CmdLocksRelease(const Globals& g, const std::string& name, uint64_t lease, uint64_t token);

int CmdElect(const Globals& g, const std::string& name, const std::string& value,
             const std::string& ttl);
int CmdLeader(const Globals& g, const std::string& name);
int CmdObserve(const Globals& g, const std::string& name, uint64_t after_epoch, int count);
int CmdProclaim(const Globals& g, const std::string& name, uint64_t lease, uint64_t token,
                const std::string& value);
int CmdResign(const Globals& g, const std::string& name, uint64_t lease, uint64_t token);

int CmdClusterStatus(const Globals& g);
int CmdClusterMembers(const Globals& g);
int CmdClusterTransfer(const Globals& g, uint64_t target);

}  // namespace raftlock::ctl
