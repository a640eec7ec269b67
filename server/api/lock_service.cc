// Lock service: Acquire (try-once or waiting without holding a thread),
// Release, Describe, List, ValidateToken.
#include <spdlog/spdlog.h>

#include "server/api/call.h"
#include "server/api/services.h"

namespace raftlock::server {

namespace {

v1::NotAcquiredReason ReasonFor(v1::EndReason reason) {
  switch (reason) {
    case v1::END_REASON_TIMED_OUT:
      return v1::NOT_ACQUIRED_REASON_TIMED_OUT;
    case v1::END_REASON_CANCELLED:
      return v1::NOT_ACQUIRED_REASON_CANCELLED;
    case v1::END_REASON_LEASE_REVOKED:
    case v1::END_REASON_LEASE_EXPIRED:
      return v1::NOT_ACQUIRED_REASON_LEASE_ENDED;
    default:
      return v1::NOT_ACQUIRED_REASON_UNSPECIFIED;
  }
}

// A queued Acquire, answered by the grant or the end of its wait.
class AcquireWaiter : public Waiter {
 public:
  AcquireWaiter(Replica* replica, std::shared_ptr<UnaryCall<v1::LockAcquireResponse>> call,
                std::string name)
      : replica_(replica), call_(std::move(call)), name_(std::move(name)) {}

  void Granted(uint64_t token, uint64_t /*epoch*/, uint64_t index, int64_t now_ms) override {
    v1::LockAcquireResponse response;
    FillHeader(*replica_, index, now_ms, false, response.mutable_header());
    response.set_acquired(true);
    response.set_token(token);
    if (auto info = replica_->state().Describe(name_)) *response.mutable_lock() = *info;
    call_->Reply(std::move(response));
  }

  void Ended(v1::EndReason reason, uint64_t index, int64_t now_ms) override {
    v1::LockAcquireResponse response;
    FillHeader(*replica_, index, now_ms, false, response.mutable_header());
    response.set_acquired(false);
    response.set_reason(ReasonFor(reason));
    call_->Reply(std::move(response));
  }

 private:
  Replica* const replica_;
  const std::shared_ptr<UnaryCall<v1::LockAcquireResponse>> call_;
  const std::string name_;
};

// Withdraws the queued wait of (name, lease) if it is still parked: the call
// was cancelled or its deadline passed.
void WithdrawWait(ClientApi* api, const std::string& name, uint64_t lease) {
  if (!api->TakeWaiter(false, name, lease)) return;
  v1::Command cancel;
  cancel.mutable_lock_cancel_wait()->set_name(name);
  cancel.mutable_lock_cancel_wait()->set_lease_id(lease);
  api->replica().Propose(std::move(cancel), [](absl::StatusOr<lock::ApplyResult>) {});
}

}  // namespace

grpc::ServerUnaryReactor* LockService::Acquire(grpc::CallbackServerContext* context,
                                               const v1::LockAcquireRequest* request,
                                               v1::LockAcquireResponse* response) {
  auto call = UnaryCall<v1::LockAcquireResponse>::Create(context, response);
  v1::Command command;
  if (grpc::Status s = ApplyWriteId(request->write(), &command); !s.ok()) {
    call->Complete(s);
    return call.get();
  }
  auto* acquire = command.mutable_lock_acquire();
  acquire->set_name(request->name());
  acquire->set_lease_id(request->lease_id());
  acquire->set_mode(request->mode());
  acquire->set_permits(request->permits());
  acquire->set_wait_timeout_ms(request->wait_timeout_ms());
  ClientApi* api = api_;
  Replica* replica = &api_->replica();
  const std::string name = request->name();
  const uint64_t lease = request->lease_id();
  replica->Propose(std::move(command), [api, replica, call, name,
                                        lease](absl::StatusOr<lock::ApplyResult> applied) {
    if (!applied.ok()) {
      call->Fail(ReplicaError(applied.status(), replica->leader()));
      return;
    }
    const v1::CommandResult& result = applied->result;
    if (result.code() != 0) {
      call->Fail(CommandError(result));
      return;
    }
    const auto& outcome = result.lock_acquire();
    v1::LockAcquireResponse out;
    FillHeader(*replica, result.index(), result.cluster_time_ms(), applied->duplicate,
               out.mutable_header());
    const lock::LockStateMachine& state = replica->state();
    std::optional<v1::LockInfo> info = state.Describe(name);
    if (info) *out.mutable_lock() = *info;
    switch (outcome.outcome()) {
      case v1::ACQUIRE_OUTCOME_GRANTED:
        out.set_acquired(true);
        out.set_token(outcome.token());
        call->Reply(std::move(out));
        return;
      case v1::ACQUIRE_OUTCOME_BUSY:
        out.set_acquired(false);
        out.set_reason(v1::NOT_ACQUIRED_REASON_BUSY);
        call->Reply(std::move(out));
        return;
      case v1::ACQUIRE_OUTCOME_QUEUED:
        break;
      default:
        call->Complete(grpc::Status(grpc::StatusCode::INTERNAL, "unknown acquire outcome"));
        return;
    }
    // Queued. A retried Acquire may have been granted, or its wait ended,
    // since the first attempt: answer from the current state in that case.
    bool waiting = false;
    if (info) {
      for (const auto& holder : info->holders()) {
        if (holder.lease_id() == lease) {
          out.set_acquired(true);
          out.set_token(holder.token());
          call->Reply(std::move(out));
          return;
        }
      }
      for (const auto& waiter : info->waiters()) waiting = waiting || waiter.lease_id() == lease;
    }
    if (!waiting) {
      out.set_acquired(false);
      out.set_reason(v1::NOT_ACQUIRED_REASON_TIMED_OUT);
      call->Reply(std::move(out));
      return;
    }
    api->ParkWaiter(false, name, lease, std::make_shared<AcquireWaiter>(replica, call, name));
    call->SetOnCancel([api, name, lease] { WithdrawWait(api, name, lease); });
    // The call may have been cancelled before the hook was set.
    if (call->finished()) WithdrawWait(api, name, lease);
  });
  return call.get();
}

grpc::ServerUnaryReactor* LockService::Release(grpc::CallbackServerContext* context,
                                               const v1::LockReleaseRequest* request,
                                               v1::LockReleaseResponse* response) {
  auto call = UnaryCall<v1::LockReleaseResponse>::Create(context, response);
  v1::Command command;
  if (grpc::Status s = ApplyWriteId(request->write(), &command); !s.ok()) {
    call->Complete(s);
    return call.get();
  }
  auto* release = command.mutable_lock_release();
  release->set_name(request->name());
  release->set_lease_id(request->lease_id());
  release->set_token(request->token());
  ProposeFor(&api_->replica(), call, std::move(command),
             [](const v1::CommandResult&, v1::LockReleaseResponse*) {});
  return call.get();
}

grpc::ServerUnaryReactor* LockService::Describe(grpc::CallbackServerContext* context,
                                                const v1::LockDescribeRequest* request,
                                                v1::LockDescribeResponse* response) {
  auto call = UnaryCall<v1::LockDescribeResponse>::Create(context, response);
  std::string name = request->name();
  ReadFor(&api_->replica(), call,
          [name](const lock::LockStateMachine& state, v1::LockDescribeResponse* out) {
            auto info = state.Describe(name);
            out->set_found(info.has_value());
            if (info) *out->mutable_lock() = *info;
          });
  return call.get();
}

grpc::ServerUnaryReactor* LockService::List(grpc::CallbackServerContext* context,
                                            const v1::LockListRequest* request,
                                            v1::LockListResponse* response) {
  auto call = UnaryCall<v1::LockListResponse>::Create(context, response);
  std::string prefix = request->prefix();
  ReadFor(&api_->replica(), call,
          [prefix](const lock::LockStateMachine& state, v1::LockListResponse* out) {
            for (auto& info : state.ListLocks(prefix)) *out->add_locks() = std::move(info);
          });
  return call.get();
}

grpc::ServerUnaryReactor* LockService::ValidateToken(grpc::CallbackServerContext* context,
                                                     const v1::ValidateTokenRequest* request,
                                                     v1::ValidateTokenResponse* response) {
  auto call = UnaryCall<v1::ValidateTokenResponse>::Create(context, response);
  std::string name = request->name();
  uint64_t token = request->token();
  ReadFor(&api_->replica(), call,
          [name, token](const lock::LockStateMachine& state, v1::ValidateTokenResponse* out) {
            v1::TokenCheck check = state.ValidateToken(name, token);
            out->set_valid(check.valid());
            out->set_current_token(check.current_token());
          });
  return call.get();
}

}  // namespace raftlock::server
