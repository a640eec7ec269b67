#include "raftlock/mutex.h"

#include <spdlog/spdlog.h>

#include "client/src/internal.h"
#include "client/src/local_claims.h"

namespace raftlock {

using internal::OutcomeUnknown;

LockHandle::LockHandle(Session& session, std::string name)
    : session_(&session), name_(std::move(name)) {}

LockHandle::~LockHandle() {
  // A hold left behind would pass to the session's next object on this name
  // (re-acquire): release it first. Unless that is known to have worked, the
  // claim stays: a release of unknown outcome could still end the hold under
  // that next object. A lost or closed session has no next object, and its
  // holds end with its lease.
  if (held_ && !session_->token().cancelled()) {
    absl::Status released = Unlock(After(std::chrono::seconds(1)));
    if (!released.ok()) {
      spdlog::warn("raftlock: releasing {} (token {}) as its lock object ended: {}", name_, token_,
                   released.ToString());
    }
    if (held_) return;
  }
  session_->claims().Release(name_, this);
}

bool LockHandle::held() const { return held_ && !session_->token().cancelled(); }

absl::Status LockHandle::AcquireImpl(v1::LockMode mode, uint32_t permits, Deadline deadline,
                                     bool try_once, bool* busy) {
  if (session_->token().cancelled()) {
    if (busy) *busy = false;
    return absl::FailedPreconditionError("lock " + name_ + ": the session is " +
                                         SessionStateName(session_->state()));
  }
  // First the session's claim on the name: another lock object of this
  // session would share this one's hold at the server.
  const Deadline attempts_end = internal::AttemptsEnd(deadline);
  bool claim_busy = false;
  absl::Status claimed = session_->claims().ClaimForCall(
      name_, this, attempts_end, try_once, &claim_busy, *session_, "lock " + name_,
      "another lock object of this session holds it");
  if (!claimed.ok() || claim_busy) {
    if (busy) *busy = claim_busy;
    return claimed;
  }
  absl::Status status = AcquireClaimed(mode, permits, deadline, attempts_end, try_once, busy);
  if (!held_) session_->claims().Release(name_, this);
  return status;
}

absl::Status LockHandle::AcquireClaimed(v1::LockMode mode, uint32_t permits, Deadline deadline,
                                        Deadline attempts_end, bool try_once, bool* busy) {
  Client& client = *session_->client();
  const uint64_t kept_token = held_ ? token_ : 0;  // a new Lock of a hold returns it again
  v1::LockAcquireRequest request;                  // the last attempt, for Abandon
  auto attempt = [&](int64_t wait_ms, Deadline by) -> absl::StatusOr<internal::WaitingAttempt> {
    request.Clear();
    *request.mutable_write() = client.NextWrite();
    request.set_name(name_);
    request.set_lease_id(session_->lease_id());
    request.set_mode(mode);
    request.set_permits(permits);
    request.set_wait_timeout_ms(wait_ms);
    auto answer = client.LockAcquire(request, by, request.mutable_write());
    if (!answer.ok()) return answer.status();
    if (!answer->acquired()) return internal::WaitingAttempt{false, answer->reason()};
    held_ = true;
    pending_release_.reset();
    token_ = answer->token();
    mode_ = mode;
    return internal::WaitingAttempt{true};
  };
  absl::Status status = internal::RunWaitingCall(
      {"lock " + name_, "not acquired", "held by another session"}, deadline, try_once, busy,
      attempt, [&] { Abandon(request, kept_token, deadline); }, attempts_end);
  if (status.ok() && held_ && session_->token().cancelled()) {
    // Granted as the session was lost: the server may hand it on any moment.
    (void)Unlock(deadline);
    held_ = false;
    return absl::FailedPreconditionError("lock " + name_ + ": the session was " +
                                         SessionStateName(session_->state()) +
                                         " while acquiring; the grant was given back");
  }
  return status;
}

void LockHandle::Abandon(const v1::LockAcquireRequest& request, uint64_t kept_token,
                         Deadline deadline) {
  if (session_->token().cancelled()) return;  // the lease ended: nothing is held
  Client& client = *session_->client();
  internal::WithdrawUnanswered(
      "acquire of " + name_, deadline,
      [&](Deadline by, bool new_write) -> absl::StatusOr<std::optional<uint64_t>> {
        v1::LockAcquireRequest probe = request;
        probe.set_wait_timeout_ms(0);
        if (new_write) *probe.mutable_write() = client.NextWrite();
        auto answer = client.LockAcquire(probe, by);
        if (!answer.ok()) return answer.status();
        if (answer->acquired() && answer->token() != kept_token) return answer->token();
        return std::nullopt;
      },
      [&](uint64_t token, Deadline by) {
        v1::LockReleaseRequest release;
        release.set_name(name_);
        release.set_lease_id(session_->lease_id());
        release.set_token(token);
        return client.LockRelease(std::move(release), by).status();
      });
}

absl::Status LockHandle::Unlock(Deadline deadline) {
  if (!held_) return absl::OkStatus();
  v1::LockReleaseRequest request;
  request.set_name(name_);
  request.set_lease_id(session_->lease_id());
  request.set_token(token_);
  if (!pending_release_) pending_release_ = session_->client()->NextWrite();
  *request.mutable_write() = *pending_release_;  // a retried Unlock gets the first answer
  v1::WriteId sent;
  auto released = session_->client()->LockRelease(std::move(request), deadline, &sent);
  if (!released.ok() && OutcomeUnknown(released.status())) {
    // Still held as far as we know; Unlock may be retried with the write last
    // sent (the Client may have renewed the first). A write the server forgot
    // (WriteForgotten) cannot be asked again: the retry sends a new one.
    pending_release_ = sent;
    if (WriteForgotten(released.status())) pending_release_.reset();
    return released.status();
  }
  held_ = false;
  pending_release_.reset();
  session_->claims().Release(name_, this);
  return released.status();
}

LockGuard LockHandle::Adopt() { return LockGuard(this); }

// ---------------------------------------------------------------- Mutex

absl::Status Mutex::Lock(Deadline deadline) {
  return AcquireImpl(v1::LOCK_MODE_EXCLUSIVE, 0, deadline, false, nullptr);
}

absl::StatusOr<bool> Mutex::TryLock(Deadline deadline) {
  bool busy = false;
  absl::Status status = AcquireImpl(v1::LOCK_MODE_EXCLUSIVE, 0, deadline, true, &busy);
  if (!status.ok()) return status;
  return !busy;
}

absl::StatusOr<LockGuard> Mutex::ScopedLock(Deadline deadline) {
  absl::Status status = Lock(deadline);
  if (!status.ok()) return status;
  return Adopt();
}

// ---------------------------------------------------------------- SharedMutex

absl::Status SharedMutex::Lock(Deadline deadline) {
  return AcquireImpl(v1::LOCK_MODE_EXCLUSIVE, 0, deadline, false, nullptr);
}

absl::StatusOr<bool> SharedMutex::TryLock(Deadline deadline) {
  bool busy = false;
  absl::Status status = AcquireImpl(v1::LOCK_MODE_EXCLUSIVE, 0, deadline, true, &busy);
  if (!status.ok()) return status;
  return !busy;
}

absl::Status SharedMutex::LockShared(Deadline deadline) {
  return AcquireImpl(v1::LOCK_MODE_SHARED, 0, deadline, false, nullptr);
}

absl::StatusOr<bool> SharedMutex::TryLockShared(Deadline deadline) {
  bool busy = false;
  absl::Status status = AcquireImpl(v1::LOCK_MODE_SHARED, 0, deadline, true, &busy);
  if (!status.ok()) return status;
  return !busy;
}

absl::StatusOr<LockGuard> SharedMutex::ScopedLock(Deadline deadline) {
  absl::Status status = Lock(deadline);
  if (!status.ok()) return status;
  return Adopt();
}

absl::StatusOr<LockGuard> SharedMutex::ScopedLockShared(Deadline deadline) {
  absl::Status status = LockShared(deadline);
  if (!status.ok()) return status;
  return Adopt();
}

// ---------------------------------------------------------------- Semaphore

absl::Status Semaphore::Acquire(Deadline deadline) {
  return AcquireImpl(v1::LOCK_MODE_SHARED, permits_, deadline, false, nullptr);
}

absl::StatusOr<bool> Semaphore::TryAcquire(Deadline deadline) {
  bool busy = false;
  absl::Status status = AcquireImpl(v1::LOCK_MODE_SHARED, permits_, deadline, true, &busy);
  if (!status.ok()) return status;
  return !busy;
}

absl::StatusOr<LockGuard> Semaphore::ScopedAcquire(Deadline deadline) {
  absl::Status status = Acquire(deadline);
  if (!status.ok()) return status;
  return Adopt();
}

// ---------------------------------------------------------------- LockGuard

LockGuard::LockGuard(LockGuard&& other) noexcept : lock_(other.lock_), token_(other.token_) {
  other.lock_ = nullptr;
}

LockGuard& LockGuard::operator=(LockGuard&& other) noexcept {
  if (this != &other) {
    (void)Unlock();
    lock_ = other.lock_;
    token_ = other.token_;
    other.lock_ = nullptr;
  }
  return *this;
}

LockGuard::~LockGuard() {
  absl::Status status = Unlock();
  if (!status.ok()) {
    spdlog::warn("raftlock: unlocking {} (token {}) failed: {}", name(), token_, status.ToString());
  }
}

const std::string& LockGuard::name() const {
  static const std::string kEmpty;
  return lock_ ? lock_->name() : kEmpty;
}

CancellationToken LockGuard::cancelled() const {
  if (lock_) return lock_->session().token();
  CancellationToken none;
  none.Cancel("no lock");
  return none;
}

absl::Status LockGuard::Unlock(Deadline deadline) {
  if (lock_ == nullptr) return absl::OkStatus();
  LockHandle* lock = lock_;
  // Only the hold this guard adopted (the object may have been relocked).
  if (lock->held_ && lock->token_ == token_) {
    absl::Status status = lock->Unlock(deadline);
    if (!status.ok() && lock->held_) return status;  // still held: may be retried
    lock_ = nullptr;
    return status;
  }
  lock_ = nullptr;
  return absl::OkStatus();
}

}  // namespace raftlock
