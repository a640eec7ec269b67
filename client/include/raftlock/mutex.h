// Distributed locks held by a Session: Mutex, SharedMutex, Semaphore, and the
// RAII LockGuard that carries the fencing token.
//
// A lock is held by the session's lease (docs/semantics.md §3): it is released
// by Unlock, or by the server when the lease ends. Every grant returns a
// fencing token that strictly increases per lock name; pass it to the guarded
// resource with every write. One lease holds a given name at most once, in one
// mode, and a Semaphore of N permits gives one permit per session. So lock
// objects sharing a Session take turns: one object per name at a time, in any
// mode, claims the name in the session before it asks the server (others wait
// their turn, or TryLock returns false); a second Lock by the holding object
// returns its hold again (same token). Threads that share a Session thus
// exclude each other as sessions do (shared holds included: give readers that
// must overlap their own sessions).
//
// Waiting: Lock(deadline) waits in the server's FIFO queue without holding a
// server thread. Retries (leader changes, lost answers) reuse the operation's
// WriteId, so a lock is granted at most once per call; if the outcome of a
// call is unknown when it gives up, it withdraws its wait and releases a grant
// it may have got (best effort), so no hold is left behind unknowingly.
//
// Thread-safety: a lock object is not meant to be shared between threads
// without external synchronisation (like std::mutex's owner). Different lock
// objects may share one Session from many threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "proto/lock.pb.h"
#include "raftlock/session.h"
#include "raftlock/status.h"

namespace raftlock {

class LockGuard;

// The common part of every lock object. `session` must outlive it.
class LockHandle {
 public:
  LockHandle(Session& session, std::string name);
  // Releases a hold it still has while the session lives (best effort, up to
  // 1 s), then gives up the session's claim on the name -- unless the
  // release's outcome is unknown: then no other object of the session can
  // take the name.
  virtual ~LockHandle();
  LockHandle(const LockHandle&) = delete;
  LockHandle& operator=(const LockHandle&) = delete;

  const std::string& name() const { return name_; }
  Session& session() const { return *session_; }
  // Whether this object believes it holds the lock (false once the session is
  // lost or closed, even before Unlock).
  bool held() const;
  // The fencing token of the current hold (0 when not held).
  uint64_t token() const { return held_ ? token_ : 0; }
  v1::LockMode mode() const { return mode_; }

  // Releases the hold (owner-checked by lease and token). OK if it was not
  // held. FAILED_PRECONDITION (NOT_HELD) if the server had already released it.
  absl::Status Unlock(Deadline deadline);

 protected:
  // Acquires in `mode`: claims the name in the session (see the top), then
  // asks the server. try_once: one attempt, *busy set when held by others.
  absl::Status AcquireImpl(v1::LockMode mode, uint32_t permits, Deadline deadline, bool try_once,
                           bool* busy);
  // AcquireImpl's server part, once the name is claimed; attempts end at
  // `attempts_end` (internal::AttemptsEnd of `deadline`, taken at the start).
  absl::Status AcquireClaimed(v1::LockMode mode, uint32_t permits, Deadline deadline,
                              Deadline attempts_end, bool try_once, bool* busy);
  // A guard for the current hold (after a successful AcquireImpl).
  LockGuard Adopt();

 private:
  friend class LockGuard;
  // Called when a call's outcome is unknown: withdraws a wait / releases a
  // grant, giving up at `deadline` (the call's own). A grant of `kept_token`
  // (the hold this object had before the call; 0: none) is kept.
  void Abandon(const v1::LockAcquireRequest& request, uint64_t kept_token, Deadline deadline);

  Session* const session_;
  const std::string name_;
  bool held_ = false;
  uint64_t token_ = 0;
  v1::LockMode mode_ = v1::LOCK_MODE_EXCLUSIVE;
  // The release of the current hold whose outcome is unknown: Unlock re-sends it.
  std::optional<v1::WriteId> pending_release_;
};

// An exclusive lock.
class Mutex : public LockHandle {
 public:
  Mutex(Session& session, std::string name) : LockHandle(session, std::move(name)) {}
  // Waits (FIFO) until held. OK: held, token() is the fencing token.
  // DEADLINE_EXCEEDED: not granted before `deadline`. Returns by `deadline`:
  // the waiting ends a tenth of the time (20..500 ms) earlier, kept back to
  // withdraw a wait whose answer was lost.
  absl::Status Lock(Deadline deadline);
  // One attempt: true if held now, false if someone else holds it.
  absl::StatusOr<bool> TryLock(Deadline deadline = After(std::chrono::seconds(5)));
  // Lock() and a guard that unlocks when destroyed.
  absl::StatusOr<LockGuard> ScopedLock(Deadline deadline);
};

// A readers-writer lock: exclusive Lock or shared LockShared. A session holds
// a name in one mode at a time: asking this object for the other mode while it
// holds one is FAILED_PRECONDITION (MODE_CONFLICT), and another object of the
// session waits its turn (see the top).
class SharedMutex : public LockHandle {
 public:
  SharedMutex(Session& session, std::string name) : LockHandle(session, std::move(name)) {}
  absl::Status Lock(Deadline deadline);
  absl::StatusOr<bool> TryLock(Deadline deadline = After(std::chrono::seconds(5)));
  absl::Status LockShared(Deadline deadline);
  absl::StatusOr<bool> TryLockShared(Deadline deadline = After(std::chrono::seconds(5)));
  absl::Status UnlockShared(Deadline deadline) { return Unlock(deadline); }
  absl::StatusOr<LockGuard> ScopedLock(Deadline deadline);
  absl::StatusOr<LockGuard> ScopedLockShared(Deadline deadline);
};

// A counting semaphore of `permits` shared permits (one per session).
// Every Semaphore object on a name must declare the same permits
// (FAILED_PRECONDITION PERMITS_CONFLICT otherwise).
class Semaphore : public LockHandle {
 public:
  Semaphore(Session& session, std::string name, uint32_t permits)
      : LockHandle(session, std::move(name)), permits_(permits) {}
  uint32_t permits() const { return permits_; }
  absl::Status Acquire(Deadline deadline);
  absl::StatusOr<bool> TryAcquire(Deadline deadline = After(std::chrono::seconds(5)));
  absl::Status Release(Deadline deadline) { return Unlock(deadline); }
  absl::StatusOr<LockGuard> ScopedAcquire(Deadline deadline);

 private:
  const uint32_t permits_;
};

// Owns one hold: unlocks it when destroyed (errors are logged). Movable.
class LockGuard {
 public:
  LockGuard() = default;
  LockGuard(LockGuard&& other) noexcept;
  LockGuard& operator=(LockGuard&& other) noexcept;
  ~LockGuard();

  bool owns_lock() const { return lock_ != nullptr && lock_->held(); }
  // The fencing token of the hold (kept after Unlock, for logging).
  uint64_t token() const { return token_; }
  const std::string& name() const;
  // Cancelled when the session holding the lock is lost or closed: stop
  // writing to the guarded resource.
  CancellationToken cancelled() const;
  // Unlocks now. OK if already unlocked.
  absl::Status Unlock(Deadline deadline = After(std::chrono::seconds(5)));

 private:
  friend class LockHandle;
  explicit LockGuard(LockHandle* lock) : lock_(lock), token_(lock->token()) {}
  LockHandle* lock_ = nullptr;
  uint64_t token_ = 0;
};

}  // namespace raftlock
