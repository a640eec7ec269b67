#include "raftlock/election.h"

#include <google/protobuf/util/message_differencer.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

#include "client/src/internal.h"
#include "client/src/local_claims.h"

namespace raftlock {

namespace {

using google::protobuf::util::MessageDifferencer;
using std::chrono::milliseconds;

// Observe streams are reopened this often (resuming after the last epoch), so
// a stream stuck on a paused or deposed replica is replaced in bounded time.
constexpr milliseconds kStreamLifetime{5000};

ElectionUpdate FromInfo(const v1::ElectionInfo& info, bool skipped) {
  ElectionUpdate update;
  update.kind = ElectionUpdate::Kind::kCurrent;
  update.skipped = skipped;
  update.epoch = info.epoch();
  update.has_leader = info.has_leader();
  update.leader_lease_id = info.leader_lease_id();
  update.value = info.value();
  update.token = info.token();
  return update;
}

ElectionUpdate FromEvent(const v1::ElectionEvent& event) {
  ElectionUpdate update;
  switch (event.type()) {
    case v1::ELECTION_EVENT_ELECTED:
      update.kind = ElectionUpdate::Kind::kElected;
      break;
    case v1::ELECTION_EVENT_PROCLAIMED:
      update.kind = ElectionUpdate::Kind::kProclaimed;
      break;
    default:
      update.kind = ElectionUpdate::Kind::kNoLeader;
  }
  update.epoch = event.epoch();
  update.has_leader = update.kind != ElectionUpdate::Kind::kNoLeader;
  update.leader_lease_id = event.leader_lease_id();
  update.value = event.value();
  update.token = event.token();
  update.reason = event.reason();
  return update;
}

}  // namespace

const char* ElectionUpdateKindName(ElectionUpdate::Kind kind) {
  switch (kind) {
    case ElectionUpdate::Kind::kCurrent:
      return "CURRENT";
    case ElectionUpdate::Kind::kElected:
      return "ELECTED";
    case ElectionUpdate::Kind::kProclaimed:
      return "PROCLAIMED";
    case ElectionUpdate::Kind::kNoLeader:
      return "NO_LEADER";
  }
  return "UNKNOWN";
}

// ---------------------------------------------------------------- ElectionObserver

std::unique_ptr<ElectionObserver> ElectionObserver::Start(
    std::shared_ptr<Client> client, std::string name,
    std::function<void(const ElectionUpdate&)> callback, uint64_t after_epoch) {
  std::unique_ptr<ElectionObserver> observer(
      new ElectionObserver(std::move(client), std::move(name), std::move(callback), after_epoch));
  observer->thread_ = std::thread([o = observer.get()] { o->Run(); });
  return observer;
}

ElectionObserver::ElectionObserver(std::shared_ptr<Client> client, std::string name,
                                   std::function<void(const ElectionUpdate&)> callback,
                                   uint64_t after_epoch)
    : client_(std::move(client)),
      name_(std::move(name)),
      callback_(std::move(callback)),
      last_epoch_(after_epoch) {}

ElectionObserver::~ElectionObserver() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    if (context_) context_->TryCancel();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ElectionObserver::Run() {
  std::mt19937 rng(std::random_device{}());
  int failures = 0;
  while (true) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kStreamLifetime);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
      context_ = &context;
    }
    v1::ObserveRequest request;
    request.set_name(name_);
    request.set_after_epoch(last_epoch_.load());
    bool progressed = false;
    bool quiet = false;
    absl::Status status = client_->ObserveOnce(
        &context, request,
        [&](const v1::ObserveResponse& message) {
          progressed = true;
          ElectionUpdate update;
          if (message.has_event()) {
            if (message.event().epoch() <= last_epoch_.load()) return true;  // already delivered
            update = FromEvent(message.event());
          } else if (last_state_ && MessageDifferencer::Equals(*last_state_, message.current())) {
            // The state this observer reported last, with no event since: a
            // never-used election (epoch 0), or a forgotten one re-reported
            // as skipped on each new stream. Not news.
            return true;
          } else {
            update = FromInfo(message.current(), message.skipped());
          }
          if (message.has_event()) {
            last_state_.reset();
          } else {
            last_state_ = message.current();
          }
          last_epoch_.store(std::max(last_epoch_.load(), update.epoch));
          callback_(update);
          return true;
        },
        &quiet);
    {
      std::lock_guard<std::mutex> lock(mu_);
      context_ = nullptr;
      if (stop_) return;
    }
    // The stream's lifetime ended: after messages, or on a replica that still answers.
    const bool expected_end =
        status.code() == absl::StatusCode::kDeadlineExceeded && (progressed || quiet);
    failures = (progressed || expected_end) ? 0 : failures + 1;
    if (status.code() == absl::StatusCode::kInvalidArgument) {
      spdlog::error("raftlock: observing {}: {}", name_, status.ToString());
    }
    if (failures == 0 && status.code() == absl::StatusCode::kDeadlineExceeded) continue;
    const int64_t cap = std::min<int64_t>(1000, 20LL << std::min(failures, 10));
    const milliseconds pause(std::uniform_int_distribution<int64_t>(0, cap)(rng));
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, pause, [this] { return stop_; });
  }
}

// ---------------------------------------------------------------- Election

Election::Election(Session& session, std::string name)
    : session_(&session), name_(std::move(name)) {}

Election::~Election() {
  if (leading_ && !session_->token().cancelled()) {
    absl::Status status = Resign(After(milliseconds(2000)));
    if (!status.ok()) spdlog::warn("raftlock: resigning {}: {}", name_, status.ToString());
  }
  // A resign of unknown outcome keeps the claim: it could still end the
  // leadership under the session's next object on the name.
  if (!leading_ || session_->token().cancelled()) {
    session_->election_claims().Release(name_, this);
  }
}

void Election::ReleaseClaimUnlessLeading() {
  if (!leading_) session_->election_claims().Release(name_, this);
}

bool Election::leading() const { return leading_ && !session_->token().cancelled(); }

absl::Status Election::Campaign(const std::string& value, Deadline deadline) {
  if (session_->token().cancelled()) {
    return absl::FailedPreconditionError("campaign " + name_ + ": the session is " +
                                         SessionStateName(session_->state()));
  }
  const Deadline attempts_end = internal::AttemptsEnd(deadline);
  absl::Status claimed = session_->election_claims().ClaimForCall(
      name_, this, attempts_end, /*try_once=*/false, /*busy=*/nullptr, *session_,
      "campaign " + name_, "another election object of this session leads");
  if (!claimed.ok()) return claimed;
  absl::Status status = CampaignClaimed(value, deadline, attempts_end);
  ReleaseClaimUnlessLeading();
  return status;
}

absl::Status Election::CampaignClaimed(const std::string& value, Deadline deadline,
                                       Deadline attempts_end) {
  Client& client = *session_->client();
  const uint64_t kept_token = leading_ ? token_ : 0;  // campaigning again returns it
  v1::CampaignRequest request;                        // the last attempt, for Abandon
  auto attempt = [&](int64_t wait_ms, Deadline by) -> absl::StatusOr<internal::WaitingAttempt> {
    request.Clear();
    *request.mutable_write() = client.NextWrite();
    request.set_name(name_);
    request.set_lease_id(session_->lease_id());
    request.set_value(value);
    request.set_wait_timeout_ms(wait_ms);
    auto answer = client.Campaign(request, by, request.mutable_write());
    if (!answer.ok()) return answer.status();
    if (!answer->elected()) return internal::WaitingAttempt{false, answer->reason()};
    leading_ = true;
    pending_resign_.reset();
    token_ = answer->token();
    epoch_ = answer->epoch();
    return internal::WaitingAttempt{true};
  };
  absl::Status status = internal::RunWaitingCall(
      {"campaign " + name_, "not elected", "another session leads"}, deadline, /*try_once=*/false,
      /*busy=*/nullptr, attempt, [&] { Abandon(request, kept_token, deadline); }, attempts_end);
  if (status.ok() && leading_ && session_->token().cancelled()) {
    // Elected as the session was lost: the server may end it any moment.
    (void)Resign(deadline);
    leading_ = false;
    return absl::FailedPreconditionError("campaign " + name_ + ": the session was " +
                                         SessionStateName(session_->state()) +
                                         " while campaigning; the leadership was resigned");
  }
  return status;
}

void Election::Abandon(const v1::CampaignRequest& request, uint64_t kept_token, Deadline deadline) {
  if (session_->token().cancelled()) return;  // the lease ended: nothing is led
  Client& client = *session_->client();
  internal::WithdrawUnanswered(
      "campaign for " + name_, deadline,
      [&](Deadline by, bool new_write) -> absl::StatusOr<std::optional<uint64_t>> {
        v1::CampaignRequest probe = request;
        probe.set_wait_timeout_ms(0);
        if (new_write) *probe.mutable_write() = client.NextWrite();
        auto answer = client.Campaign(probe, by);
        if (!answer.ok()) return answer.status();
        if (answer->elected() && answer->token() != kept_token) return answer->token();
        return std::nullopt;
      },
      [&](uint64_t token, Deadline by) {
        v1::ResignRequest resign;
        resign.set_name(name_);
        resign.set_lease_id(session_->lease_id());
        resign.set_token(token);
        return client.Resign(std::move(resign), by).status();
      });
}

absl::Status Election::Proclaim(const std::string& value, Deadline deadline) {
  if (!leading()) {
    return WithReason(absl::FailedPreconditionError("proclaim " + name_ + ": not leading"),
                      "ERROR_REASON_NOT_HELD");
  }
  v1::ProclaimRequest request;
  request.set_name(name_);
  request.set_lease_id(session_->lease_id());
  request.set_token(token_);
  request.set_value(value);
  auto answer = session_->client()->Proclaim(std::move(request), deadline);
  if (!answer.ok()) {
    const std::string reason = ErrorReason(answer.status());
    if (reason == "ERROR_REASON_NOT_HELD" || reason == "ERROR_REASON_WRONG_TOKEN" ||
        reason == "ERROR_REASON_LEASE_NOT_FOUND") {
      leading_ = false;
      ReleaseClaimUnlessLeading();
    }
    return answer.status();
  }
  epoch_ = answer->epoch();
  return absl::OkStatus();
}

absl::Status Election::Resign(Deadline deadline) {
  if (!leading_) return absl::OkStatus();
  v1::ResignRequest request;
  request.set_name(name_);
  request.set_lease_id(session_->lease_id());
  request.set_token(token_);
  if (!pending_resign_) pending_resign_ = session_->client()->NextWrite();
  *request.mutable_write() = *pending_resign_;  // a retried Resign gets the first answer
  v1::WriteId sent;
  auto answer = session_->client()->Resign(std::move(request), deadline, &sent);
  if (!answer.ok() && internal::OutcomeUnknown(answer.status())) {
    // Still leading as far as we know; Resign may be retried with the write
    // last sent (a new one if the server forgot it: WriteForgotten).
    pending_resign_ = sent;
    if (WriteForgotten(answer.status())) pending_resign_.reset();
    return answer.status();
  }
  leading_ = false;
  pending_resign_.reset();
  ReleaseClaimUnlessLeading();
  if (answer.ok()) epoch_ = answer->epoch();
  return answer.status();
}

absl::StatusOr<v1::ElectionInfo> Election::Leader(Deadline deadline) const {
  auto answer = session_->client()->Leader(name_, deadline);
  if (!answer.ok()) return answer.status();
  return answer->election();
}

std::unique_ptr<ElectionObserver> Election::Observe(
    std::function<void(const ElectionUpdate&)> callback, uint64_t after_epoch) const {
  return ElectionObserver::Start(session_->client(), name_, std::move(callback), after_epoch);
}

}  // namespace raftlock
