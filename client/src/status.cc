#include "raftlock/status.h"

#include "absl/strings/cord.h"

namespace raftlock {

Deadline After(std::chrono::milliseconds timeout) {
  constexpr auto kYear = std::chrono::hours(24 * 365);
  if (timeout > kYear) return Clock::now() + kYear;
  return Clock::now() + timeout;
}

std::string ErrorReason(const absl::Status& status) {
  auto payload = status.GetPayload(kReasonPayloadKey);
  if (!payload) return "";
  return std::string(*payload);
}

absl::Status WithReason(absl::Status status, const std::string& reason) {
  if (!status.ok()) status.SetPayload(kReasonPayloadKey, absl::Cord(reason));
  return status;
}

bool WriteForgotten(const absl::Status& status) {
  return status.GetPayload(kWriteForgottenPayloadKey).has_value();
}

CancellationToken::CancellationToken() : state_(std::make_shared<State>()) {}

void CancellationToken::Cancel(const std::string& reason) {
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->cancelled) return;
    state_->cancelled = true;
    state_->reason = reason;
    callbacks.swap(state_->callbacks);
  }
  state_->cv.notify_all();
  for (auto& fn : callbacks) fn();
}

bool CancellationToken::cancelled() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->cancelled;
}

std::string CancellationToken::reason() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->reason;
}

bool CancellationToken::WaitUntil(Deadline deadline) const {
  std::unique_lock<std::mutex> lock(state_->mu);
  state_->cv.wait_until(lock, deadline, [this] { return state_->cancelled; });
  return state_->cancelled;
}

void CancellationToken::OnCancel(std::function<void()> fn) const {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (!state_->cancelled) {
      state_->callbacks.push_back(std::move(fn));
      return;
    }
  }
  fn();
}

}  // namespace raftlock
