// LocalClaims: which lock object of one Session claims each lock name.
//
// The server grants a name to a lease, so two lock objects sharing a Session
// would share one hold: a second Lock would return the first's grant, and one
// Unlock would end both. A lock object claims its name here before it asks
// the server, and gives the claim up once it no longer holds: one object per
// name and session at a time, whatever the mode, so threads sharing a
// Session exclude each other as sessions do.
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "raftlock/session.h"
#include "raftlock/status.h"

namespace raftlock::internal {

class LocalClaims {
 public:
  enum class Outcome { kClaimed, kBusy, kTimedOut, kStopped };

  // Claims `name` for `owner` (kClaimed, also when `owner` holds the claim
  // already). Otherwise waits until the claim is given up, unless `try_once`
  // (kBusy); gives up at `deadline` (kTimedOut) or once `stop` is cancelled
  // (kStopped, noticed within 50 ms).
  Outcome Claim(const std::string& name, const void* owner, Deadline deadline, bool try_once,
                const CancellationToken& stop);

  // Claim() for a call of a lock or election object, as a status: OK once
  // claimed, or for a try-once that found the name busy (then *busy is set);
  // DEADLINE_EXCEEDED by `deadline`, saying that `holder` has the name;
  // FAILED_PRECONDITION once `session` ends. `call` names the call ("lock
  // jobs/a") in the messages.
  absl::Status ClaimForCall(const std::string& name, const void* owner, Deadline deadline,
                            bool try_once, bool* busy, const Session& session,
                            const std::string& call, const std::string& holder);

  // Gives up `owner`'s claim on `name`, if it has it, and wakes a waiter.
  void Release(const std::string& name, const void* owner);

 private:
  std::mutex mu_;
  std::condition_variable released_;
  std::map<std::string, const void*> owners_;  // guarded by mu_
};

}  // namespace raftlock::internal
