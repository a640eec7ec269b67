#include "raftlock/mutex.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include "client/src/internal.h"

namespace raftlock {

namespace {

using std::chrono::milliseconds;

}  // namespace

namespace internal {

int64_t WaitBudgetMs(Deadline deadline) {
  const auto remaining = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
  const milliseconds margin = std::clamp(remaining / 10, milliseconds(300), milliseconds(1000));
  const milliseconds wait = std::min<milliseconds>(remaining - margin, std::chrono::hours(1));
  return wait < milliseconds(50) ? 0 : wait.count();
}

bool PollAgain(Deadline deadline) {
  const auto left = deadline - Clock::now();
  if (left <= milliseconds(100)) return false;
  std::this_thread::sleep_for(
      std::min<Clock::duration>(milliseconds(50), left - milliseconds(100)));
  return true;
}

Deadline AttemptsEnd(Deadline deadline) {
  const auto remaining = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
  return deadline - std::clamp(remaining / 10, milliseconds(20), milliseconds(500));
}

void WithdrawUnanswered(const std::string& what, Deadline deadline,
                        const std::function<std::optional<uint64_t>(Deadline)>& ask,
                        const std::function<absl::Status(uint64_t, Deadline)>& undo) {
  if (Clock::now() >= deadline) {
    spdlog::warn("raftlock: no time left to withdraw the unanswered {}", what);
    return;
  }
  std::optional<uint64_t> granted = ask(Clock::now() + (deadline - Clock::now()) / 2);
  if (!granted) return;
  absl::Status undone = undo(*granted, deadline);
  if (!undone.ok()) {
    spdlog::warn("raftlock: could not give back the unanswered {} (token {}): {}", what, *granted,
                 undone.ToString());
  }
}

bool OutcomeUnknown(const absl::Status& status) {
  if (!ErrorReason(status).empty()) return false;
  switch (status.code()) {
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kUnknown:
      return true;
    default:
      return false;
  }
}

}  // namespace internal

using internal::OutcomeUnknown;
using internal::WaitBudgetMs;

LockHandle::LockHandle(Session& session, std::string name)
    : session_(&session), name_(std::move(name)) {}

bool LockHandle::held() const { return held_ && !session_->token().cancelled(); }

absl::Status LockHandle::AcquireImpl(v1::LockMode mode, uint32_t permits, Deadline deadline,
                                     bool try_once, bool* busy) {
  if (busy) *busy = false;
  if (session_->token().cancelled()) {
    return absl::FailedPreconditionError("lock " + name_ + ": the session is " +
                                         SessionStateName(session_->state()));
  }
  Client& client = *session_->client();
  const Deadline attempts_end = internal::AttemptsEnd(deadline);
  bool waited = false;  // an earlier attempt of this call waited on the server
  while (true) {
    if (Clock::now() >= attempts_end) {
      return absl::DeadlineExceededError("lock " + name_ + ": not acquired before the deadline");
    }
    const int64_t wait_ms = try_once ? 0 : WaitBudgetMs(attempts_end);
    const bool waiting = wait_ms > 0;
    v1::LockAcquireRequest request;
    *request.mutable_write() = client.NextWrite();
    request.set_name(name_);
    request.set_lease_id(session_->lease_id());
    request.set_mode(mode);
    request.set_permits(permits);
    request.set_wait_timeout_ms(wait_ms);
    auto answer = client.LockAcquire(request, attempts_end);
    if (!answer.ok()) {
      if (OutcomeUnknown(answer.status())) Abandon(request, deadline);
      if (answer.status().code() == absl::StatusCode::kDeadlineExceeded) {
        return absl::DeadlineExceededError("lock " + name_ + ": not acquired before the deadline");
      }
      return answer.status();
    }
    waited = waited || waiting;
    if (answer->acquired()) {
      held_ = true;
      token_ = answer->token();
      mode_ = mode;
      return absl::OkStatus();
    }
    switch (answer->reason()) {
      case v1::NOT_ACQUIRED_REASON_BUSY:
        if (try_once) {
          if (busy) *busy = true;
          return absl::OkStatus();
        }
        if (waited) {
          if (internal::PollAgain(attempts_end)) continue;
          return absl::DeadlineExceededError("lock " + name_ +
                                             ": not acquired before the deadline");
        }
        return WithReason(
            absl::DeadlineExceededError("lock " + name_ + ": held by another session"),
            "NOT_ACQUIRED_REASON_BUSY");
      case v1::NOT_ACQUIRED_REASON_TIMED_OUT:
        continue;  // the server's wait ended; wait again if the deadline allows
      case v1::NOT_ACQUIRED_REASON_LEASE_ENDED:
        return WithReason(
            absl::FailedPreconditionError("lock " + name_ + ": the session's lease ended"),
            "NOT_ACQUIRED_REASON_LEASE_ENDED");
      default:
        Abandon(request, deadline);
        return absl::DeadlineExceededError("lock " + name_ + ": the wait was cancelled");
    }
  }
}

void LockHandle::Abandon(const v1::LockAcquireRequest& request, Deadline deadline) {
  if (session_->token().cancelled()) return;  // the lease ended: nothing is held
  Client& client = *session_->client();
  internal::WithdrawUnanswered(
      "acquire of " + name_, deadline,
      [&](Deadline by) -> std::optional<uint64_t> {
        v1::LockAcquireRequest probe = request;
        probe.set_wait_timeout_ms(0);
        auto answer = client.LockAcquire(probe, by);
        if (answer.ok() && answer->acquired()) return answer->token();
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
  auto released = session_->client()->LockRelease(std::move(request), deadline);
  if (!released.ok() && OutcomeUnknown(released.status())) {
    return released.status();  // still held as far as we know; Unlock may be retried
  }
  held_ = false;
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
