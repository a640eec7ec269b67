#include "client/src/local_claims.h"

#include <algorithm>

namespace raftlock::internal {

LocalClaims::Outcome LocalClaims::Claim(const std::string& name, const void* owner,
                                        Deadline deadline, bool try_once,
                                        const CancellationToken& stop) {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    auto it = owners_.find(name);
    if (it == owners_.end()) {
      owners_.emplace(name, owner);
      return Outcome::kClaimed;
    }
    if (it->second == owner) return Outcome::kClaimed;
    if (try_once) return Outcome::kBusy;
    if (stop.cancelled()) return Outcome::kStopped;
    const Deadline now = Clock::now();
    if (now >= deadline) return Outcome::kTimedOut;
    // The stop token has no way to wake this wait: look at it every 50 ms.
    released_.wait_until(lock, std::min(deadline, now + std::chrono::milliseconds(50)));
  }
}

absl::Status LocalClaims::ClaimForCall(const std::string& name, const void* owner,
                                       Deadline deadline, bool try_once, bool* busy,
                                       const Session& session, const std::string& call,
                                       const std::string& holder) {
  switch (Claim(name, owner, deadline, try_once, session.token())) {
    case Outcome::kClaimed:
      return absl::OkStatus();
    case Outcome::kBusy:
      if (busy) *busy = true;
      return absl::OkStatus();
    case Outcome::kTimedOut:
      break;
    case Outcome::kStopped:
      return absl::FailedPreconditionError(call + ": the session is " +
                                           SessionStateName(session.state()));
  }
  return absl::DeadlineExceededError(call + ": not granted before the deadline (" + holder + ")");
}

void LocalClaims::Release(const std::string& name, const void* owner) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = owners_.find(name);
    if (it == owners_.end() || it->second != owner) return;
    owners_.erase(it);
  }
  released_.notify_all();
}

}  // namespace raftlock::internal
