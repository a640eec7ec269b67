// raftlock::Session: a lease kept alive in the background.
//
// The session grants a lease and sends a keepalive every `keepalive_interval`
// (default TTL/3) from its own thread. It keeps a conservative local deadline
// from its monotonic clock: the time it *sent* the last keepalive the leader
// acknowledged, plus the TTL. The server cannot expire the lease before that
// (cluster time never runs ahead of real time), so:
//   - kJeopardy: no acknowledged keepalive for `jeopardy_after` (default TTL/2);
//     work guarded by the session's locks should prepare to stop.
//   - kLost: the local deadline minus `safety_margin` has passed, or the server
//     said the lease expired. Reported *before* the server could hand the
//     session's locks to anyone else. The token() is cancelled at that moment.
// A jeopardized session that gets an acknowledgement again returns to kHealthy.
// Lost is final: make a new Session. After loss the session tries to revoke
// the lease (best effort) so that others need not wait for the expiry; it
// starts only once on_state_change(kLost) has returned, so a callback that
// stops the guarded work keeps the locks held until it has (if it returns
// within safety_margin; the server may expire the lease from then on).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/status/statusor.h"
#include "raftlock/client.h"
#include "raftlock/status.h"

namespace raftlock {

namespace internal {
class LocalClaims;
}

enum class SessionState { kHealthy, kJeopardy, kLost, kClosed };
const char* SessionStateName(SessionState state);

struct SessionOptions {
  std::chrono::milliseconds ttl{10000};
  // 0 = defaults: interval TTL/3, jeopardy TTL/2, margin max(TTL/10, 100 ms).
  std::chrono::milliseconds keepalive_interval{0};
  std::chrono::milliseconds jeopardy_after{0};
  std::chrono::milliseconds safety_margin{0};
  // Called on the session's thread at every state change (kHealthy only when
  // leaving jeopardy). Must not destroy the Session, nor block for long,
  // except that kLost may block while it stops guarded work (for less than
  // safety_margin): the lease is revoked after it returns.
  std::function<void(SessionState)> on_state_change;
};

class Session {
 public:
  // Grants the lease (retried until `deadline`) and starts keeping it alive.
  static absl::StatusOr<std::unique_ptr<Session>> Create(std::shared_ptr<Client> client,
                                                         SessionOptions options, Deadline deadline);
  // Stops the keepalives and revokes the lease (best effort, a short deadline).
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Stops the keepalives (ending a keepalive call in flight), moves to
  // kClosed and cancels the token, then revokes the lease (so guarded work is
  // told to stop before anyone else can take the session's locks); returns by
  // `deadline`. Idempotent. Thread-safe, also from on_state_change and token
  // callbacks.
  absl::Status Close(Deadline deadline);

  uint64_t lease_id() const { return lease_id_; }
  std::chrono::milliseconds ttl() const { return options_.ttl; }
  const std::shared_ptr<Client>& client() const { return client_; }
  // Thread-safe accessors.
  SessionState state() const;
  // Cancelled when the session is lost or closed; guarded work watches it.
  CancellationToken token() const { return token_; }
  // The local deadline: the lease cannot expire on the server before it.
  Deadline local_deadline() const;
  // The time at which the session will report kLost without a new acknowledgement.
  Deadline lost_at() const;

 private:
  Session(std::shared_ptr<Client> client, SessionOptions options, uint64_t lease_id,
          Clock::time_point sent);
  void Run();
  void SetState(SessionState state, const std::string& why);
  void RevokeAfterLoss();

  friend class LockHandle;  // claims()
  friend class Election;    // election_claims()
  // Which lock object (election object) of this session claims each lock
  // (election) name (local_claims.h).
  internal::LocalClaims& claims() const { return *claims_; }
  internal::LocalClaims& election_claims() const { return *election_claims_; }

  const std::shared_ptr<Client> client_;
  SessionOptions options_;
  const uint64_t lease_id_;
  CancellationToken token_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  CallCanceller calls_;  // ends the session thread's call in flight at Close
  bool stop_ = false;
  SessionState state_ = SessionState::kHealthy;
  Clock::time_point acked_sent_;  // send time of the last acknowledged keepalive (or grant)
  std::thread thread_;
  const std::unique_ptr<internal::LocalClaims> claims_;
  const std::unique_ptr<internal::LocalClaims> election_claims_;
};

}  // namespace raftlock
