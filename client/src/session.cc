#include "raftlock/session.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "client/src/local_claims.h"

namespace raftlock {

namespace {

using std::chrono::milliseconds;

}  // namespace

const char* SessionStateName(SessionState state) {
  switch (state) {
    case SessionState::kHealthy:
      return "healthy";
    case SessionState::kJeopardy:
      return "jeopardy";
    case SessionState::kLost:
      return "lost";
    case SessionState::kClosed:
      return "closed";
  }
  return "unknown";
}

absl::StatusOr<std::unique_ptr<Session>> Session::Create(std::shared_ptr<Client> client,
                                                         SessionOptions options,
                                                         Deadline deadline) {
  if (!client) return absl::InvalidArgumentError("client: must not be null");
  const milliseconds ttl = options.ttl;
  if (ttl <= milliseconds(0)) return absl::InvalidArgumentError("ttl: must be > 0");
  if (options.keepalive_interval <= milliseconds(0)) options.keepalive_interval = ttl / 3;
  if (options.jeopardy_after <= milliseconds(0)) options.jeopardy_after = ttl / 2;
  if (options.safety_margin <= milliseconds(0)) {
    options.safety_margin = std::max(ttl / 10, milliseconds(100));
  }
  if (options.safety_margin >= ttl) {
    return absl::InvalidArgumentError("safety_margin: must be shorter than the ttl");
  }
  if (options.keepalive_interval >= ttl - options.safety_margin) {
    return absl::InvalidArgumentError(
        "keepalive_interval: must be shorter than ttl - safety_margin");
  }
  // The server starts the TTL when it applies the grant, after this moment.
  const Clock::time_point start = Clock::now();
  v1::LeaseGrantRequest request;
  request.set_ttl_ms(ttl.count());
  auto granted = client->LeaseGrant(std::move(request), deadline);
  if (!granted.ok()) return granted.status();
  std::unique_ptr<Session> session(
      new Session(std::move(client), std::move(options), granted->lease_id(), start));
  session->thread_ = std::thread([s = session.get()] { s->Run(); });
  return session;
}

Session::Session(std::shared_ptr<Client> client, SessionOptions options, uint64_t lease_id,
                 Clock::time_point sent)
    : client_(std::move(client)),
      options_(std::move(options)),
      lease_id_(lease_id),
      acked_sent_(sent),
      claims_(std::make_unique<internal::LocalClaims>()),
      election_claims_(std::make_unique<internal::LocalClaims>()) {}

Session::~Session() {
  (void)Close(After(milliseconds(1000)));
  // Close skipped the join if it ran on the session's own thread.
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  if (thread_.joinable()) thread_.detach();  // destroyed from its own callback (not allowed)
}

SessionState Session::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

Deadline Session::local_deadline() const {
  std::lock_guard<std::mutex> lock(mu_);
  return acked_sent_ + options_.ttl;
}

Deadline Session::lost_at() const {
  std::lock_guard<std::mutex> lock(mu_);
  return acked_sent_ + options_.ttl - options_.safety_margin;
}

void Session::SetState(SessionState state, const std::string& why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ == state || state_ == SessionState::kClosed) return;
    if (state_ == SessionState::kLost && state != SessionState::kClosed) return;
    state_ = state;
  }
  if (state == SessionState::kLost || state == SessionState::kJeopardy) {
    spdlog::warn("raftlock: session (lease {}) {}: {}", lease_id_, SessionStateName(state), why);
  }
  if (state == SessionState::kLost || state == SessionState::kClosed) {
    token_.Cancel(std::string("session ") + SessionStateName(state) + ": " + why);
  }
  if (options_.on_state_change) options_.on_state_change(state);
}

void Session::Run() {
  const milliseconds interval = options_.keepalive_interval;
  const milliseconds attempt_timeout =
      std::min(client_->options().attempt_timeout, std::max(milliseconds(100), options_.ttl / 5));
  Clock::time_point next_keepalive;
  {
    std::lock_guard<std::mutex> lock(mu_);
    next_keepalive = acked_sent_ + interval;
  }
  while (true) {
    Clock::time_point jeopardy_at, lost_time;
    bool healthy;
    {
      std::unique_lock<std::mutex> lock(mu_);
      jeopardy_at = acked_sent_ + options_.jeopardy_after;
      lost_time = acked_sent_ + options_.ttl - options_.safety_margin;
      healthy = state_ == SessionState::kHealthy;
      Clock::time_point wake = std::min(next_keepalive, lost_time);
      if (healthy) wake = std::min(wake, jeopardy_at);
      cv_.wait_until(lock, wake, [this] { return stop_; });
      if (stop_) return;
    }
    const Clock::time_point now = Clock::now();
    if (now >= lost_time) {
      SetState(SessionState::kLost, "no keepalive acknowledged within the lease's TTL");
      RevokeAfterLoss();
      return;
    }
    if (healthy && now >= jeopardy_at) {
      SetState(SessionState::kJeopardy, "keepalives are not being acknowledged");
      healthy = false;
    }
    if (now < next_keepalive) continue;

    // Short calls, so that Close waits for at most about one attempt.
    Deadline call_deadline = std::min({lost_time, now + interval, now + 2 * attempt_timeout});
    if (healthy) call_deadline = std::min(call_deadline, jeopardy_at);
    Clock::time_point sent{};
    auto answer =
        client_->LeaseKeepAlive(lease_id_, call_deadline, &sent, attempt_timeout, &calls_);
    if (answer.ok() && !answer->expired()) {
      bool recovered = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (sent > acked_sent_) acked_sent_ = sent;
        recovered = state_ == SessionState::kJeopardy;
      }
      if (recovered) SetState(SessionState::kHealthy, "keepalives acknowledged again");
      next_keepalive = sent + interval;
    } else if ((answer.ok() && answer->expired()) ||
               answer.status().code() == absl::StatusCode::kNotFound) {
      SetState(SessionState::kLost, "the server reports the lease expired");
      return;
    } else {
      SPDLOG_DEBUG("raftlock: keepalive of lease {} failed: {}", lease_id_,
                   answer.status().ToString());
      next_keepalive = Clock::now() + std::min(milliseconds(50), interval / 4);
    }
  }
}

void Session::RevokeAfterLoss() {
  // The lease may outlive our loss report (cluster time stands still without a
  // leader); revoking frees its locks for others as soon as the cluster is back.
  // Each attempt is a new write: a revoke that did apply makes the next one
  // answer NOT_FOUND, which ends the loop as well.
  v1::LeaseRevokeRequest request;
  request.set_lease_id(lease_id_);
  const Deadline end = Clock::now() + 2 * options_.ttl;
  while (Clock::now() < end) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
    }
    const Clock::time_point now = Clock::now();
    auto revoked = client_->LeaseRevoke(request,
                                        std::min({end, now + options_.keepalive_interval,
                                                  now + client_->options().attempt_timeout}),
                                        &calls_);
    if (revoked.ok() || revoked.status().code() == absl::StatusCode::kNotFound) return;
    std::unique_lock<std::mutex> lock(mu_);  // a pause, so fast failures do not spin
    if (cv_.wait_for(lock, milliseconds(100), [this] { return stop_; })) return;
  }
}

absl::Status Session::Close(Deadline deadline) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return absl::OkStatus();
    stop_ = true;
  }
  cv_.notify_all();
  calls_.Cancel();  // a keepalive or revoke in flight ends now
  // From a callback on the session's own thread (on_state_change, OnCancel):
  // that thread returns once the callback does.
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  // Guarded work stops before the revoke can hand the locks to anyone else.
  SetState(SessionState::kClosed, "closed");
  v1::LeaseRevokeRequest request;
  request.set_lease_id(lease_id_);
  auto revoked = client_->LeaseRevoke(std::move(request), deadline);
  if (!revoked.ok() && revoked.status().code() != absl::StatusCode::kNotFound) {
    return revoked.status();
  }
  return absl::OkStatus();
}

}  // namespace raftlock
