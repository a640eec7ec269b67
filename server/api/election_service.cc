// Election service: Campaign (waiting without holding a thread), Proclaim,
// Resign, Leader, and the Observe stream.
#include <spdlog/spdlog.h>

#include "server/api/call.h"
#include "server/api/services.h"

namespace raftlock::server {

grpc::ServerUnaryReactor* ElectionService::Campaign(grpc::CallbackServerContext* context,
                                                    const v1::CampaignRequest* request,
                                                    v1::CampaignResponse* response) {
  auto call = UnaryCall<v1::CampaignResponse>::Create(context, response);
  v1::Command command;
  if (auto error = ApplyWriteId(request->write(), &command)) {
    call->Fail(*error);
    return call.get();
  }
  auto* campaign = command.mutable_election_campaign();
  campaign->set_name(request->name());
  campaign->set_lease_id(request->lease_id());
  campaign->set_value(request->value());
  campaign->set_wait_timeout_ms(request->wait_timeout_ms());
  ClientApi* api = api_;
  Replica* replica = &api_->replica();
  const std::string name = request->name();
  const uint64_t lease = request->lease_id();
  // Every answer carries the election as it is once the outcome is applied.
  auto fill = [replica, name](v1::CampaignResponse* out, bool elected, uint64_t token,
                              uint64_t epoch, v1::NotAcquiredReason reason) {
    out->set_elected(elected);
    if (elected) {
      out->set_token(token);
      out->set_epoch(epoch);
    } else {
      out->set_reason(reason);
    }
    *out->mutable_election() = replica->state().Leader(name);
  };
  ProposeThen(
      replica, call, std::move(command),
      [api, replica, call, name, lease, fill](const v1::CommandResult& result,
                                              v1::CampaignResponse out) {
        const auto& outcome = result.election_campaign();
        if (outcome.outcome() == v1::ACQUIRE_OUTCOME_GRANTED) {
          fill(&out, true, outcome.token(), outcome.epoch(), v1::NOT_ACQUIRED_REASON_UNSPECIFIED);
          call->Reply(std::move(out));
          return;
        }
        if (outcome.outcome() == v1::ACQUIRE_OUTCOME_BUSY) {
          fill(&out, false, 0, 0, v1::NOT_ACQUIRED_REASON_BUSY);
          call->Reply(std::move(out));
          return;
        }
        // Queued; a retry may find it already elected or no longer queued.
        const v1::ElectionInfo info = replica->state().Leader(name);
        if (info.has_leader() && info.leader_lease_id() == lease) {
          // The epoch of this leadership's ELECTED event, not the latest one
          // (a later PROCLAIMED, say), while the kept history has it.
          const uint64_t elected = replica->state().ElectedEpoch(name, lease, info.token());
          fill(&out, true, info.token(), elected != 0 ? elected : info.epoch(),
               v1::NOT_ACQUIRED_REASON_UNSPECIFIED);
          call->Reply(std::move(out));
          return;
        }
        const bool queued = std::find(info.candidates().begin(), info.candidates().end(), lease) !=
                            info.candidates().end();
        if (!queued) {
          fill(&out, false, 0, 0,
               EndedWaitReason(replica->state(), lease, outcome.wait_deadline_ms()));
          call->Reply(std::move(out));
          return;
        }
        api->ParkUntilAnswered(/*election=*/true, name, lease, call, fill);
      });
  return call.get();
}

grpc::ServerUnaryReactor* ElectionService::Proclaim(grpc::CallbackServerContext* context,
                                                    const v1::ProclaimRequest* request,
                                                    v1::ProclaimResponse* response) {
  auto call = UnaryCall<v1::ProclaimResponse>::Create(context, response);
  v1::Command command;
  if (auto error = ApplyWriteId(request->write(), &command)) {
    call->Fail(*error);
    return call.get();
  }
  auto* proclaim = command.mutable_election_proclaim();
  proclaim->set_name(request->name());
  proclaim->set_lease_id(request->lease_id());
  proclaim->set_token(request->token());
  proclaim->set_value(request->value());
  ProposeFor(&api_->replica(), call, std::move(command),
             [](const v1::CommandResult& result, v1::ProclaimResponse* out) {
               out->set_epoch(result.election_proclaim().epoch());
             });
  return call.get();
}

grpc::ServerUnaryReactor* ElectionService::Resign(grpc::CallbackServerContext* context,
                                                  const v1::ResignRequest* request,
                                                  v1::ResignResponse* response) {
  auto call = UnaryCall<v1::ResignResponse>::Create(context, response);
  v1::Command command;
  if (auto error = ApplyWriteId(request->write(), &command)) {
    call->Fail(*error);
    return call.get();
  }
  auto* resign = command.mutable_election_resign();
  resign->set_name(request->name());
  resign->set_lease_id(request->lease_id());
  resign->set_token(request->token());
  ProposeFor(&api_->replica(), call, std::move(command),
             [](const v1::CommandResult& result, v1::ResignResponse* out) {
               out->set_was_leader(result.election_resign().was_leader());
               out->set_epoch(result.election_resign().epoch());
             });
  return call.get();
}

grpc::ServerUnaryReactor* ElectionService::Leader(grpc::CallbackServerContext* context,
                                                  const v1::LeaderRequest* request,
                                                  v1::LeaderResponse* response) {
  auto call = UnaryCall<v1::LeaderResponse>::Create(context, response);
  std::string name = request->name();
  if (auto error = NameError(name, api_->replica().options().limits)) {
    call->Fail(*error);
    return call.get();
  }
  ReadFor(&api_->replica(), call,
          [name](const lock::LockStateMachine& state, v1::LeaderResponse* out) {
            *out->mutable_election() = state.Leader(name);
          });
  return call.get();
}

grpc::ServerWriteReactor<v1::ObserveResponse>* ElectionService::Observe(
    grpc::CallbackServerContext* context, const v1::ObserveRequest* request) {
  return new ObserveStream(context, api_, request->name(), request->after_epoch());
}

// ---------------------------------------------------------------- ObserveStream

ObserveStream::ObserveStream(grpc::CallbackServerContext* context, ClientApi* api, std::string name,
                             uint64_t after_epoch)
    : context_(context), api_(api), name_(std::move(name)), after_epoch_(after_epoch) {
  Start();
}

void ObserveStream::Start() {
  if (auto error = NameError(name_, api_->replica().options().limits)) {
    End(*error);
    return;
  }
  // Registration happens on the loop, at the applied index of the read, so no
  // event between the initial state and the first pushed event is lost. While
  // the read is pending OnDone leaves deletion to this callback.
  {
    std::lock_guard<std::mutex> lock(mu_);
    read_pending_ = true;
  }
  api_->replica().LinearizableRead(
      [this](absl::Status status, const lock::LockStateMachine* state) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          if (done_) status = absl::CancelledError("the observer went away");
        }
        if (!status.ok()) {
          End(ReplicaError(status, api_->replica().leader()));
          EndRead();
          return;
        }
        bool registering = false;
        {
          std::lock_guard<std::mutex> lock(mu_);
          if (after_epoch_ == 0) {
            backlog_.AddCurrent(state->Leader(name_));
          } else {
            v1::ObserveResult missed = state->Observe(name_, after_epoch_);
            if (missed.skipped()) {
              backlog_.AddSkipped(missed.current());
            } else {
              // Not bounded by the backlog: the kept history is.
              for (const auto& event : missed.events()) backlog_.AddMissed(event);
            }
          }
          registering = !finishing_;  // not cancelled meanwhile
          registered_ = registering;
        }
        if (registering) api_->AddObserver(name_, this);
        Pump();
        EndRead();
      });
}

void ObserveStream::EndRead() {
  bool registered = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    read_pending_ = false;
    if (!done_) return;  // OnDone deletes later
    registered = registered_;
  }
  // OnDone already ran and left the deletion to the read.
  if (registered) api_->RemoveObserver(name_, this);
  delete this;
}

void ObserveStream::Push(const v1::ElectionEvent& event, const v1::ElectionInfo& current) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finishing_) return;
    backlog_.AddEvent(event, current);
  }
  Pump();
}

void ObserveStream::End(const CallError& error) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finishing_) return;
    finishing_ = true;
    finish_error_ = error;
    backlog_.Clear();
  }
  Pump();
}

void ObserveStream::OnWriteDone(bool ok) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok && !finishing_) {
      finishing_ = true;
      finish_error_.status = grpc::Status(grpc::StatusCode::CANCELLED, "the observer went away");
      backlog_.Clear();
    }
  }
  Pump();
}

void ObserveStream::OnCancel() {
  End({grpc::Status(grpc::StatusCode::CANCELLED, "the observer cancelled"), {}});
}

void ObserveStream::OnDone() {
  bool registered;
  {
    std::lock_guard<std::mutex> lock(mu_);
    registered = registered_;
    done_ = true;
    if (read_pending_) return;  // the read callback deletes
  }
  if (registered) api_->RemoveObserver(name_, this);
  delete this;
}

void ObserveStream::Pump() {
  enum class Action { kNone, kWrite, kFinish } action = Action::kNone;
  grpc::Status status;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (writing_ || finish_called_) return;
    if (finishing_) {
      action = Action::kFinish;
      finish_called_ = true;
      status = finish_error_.status;
      // Under mu_ and before Finish: finish_called_ makes this the only caller.
      for (const auto& [key, value] : finish_error_.trailers) {
        context_->AddTrailingMetadata(key, value);
      }
    } else if (!backlog_.empty()) {
      writing_message_ = backlog_.PopFront();
      writing_ = true;
      action = Action::kWrite;
    }
  }
  if (action == Action::kWrite) StartWrite(&writing_message_);
  if (action == Action::kFinish) Finish(status);
}

}  // namespace raftlock::server
