// Lock service: Acquire (try-once or waiting without holding a thread),
// Release, Describe, List, ValidateToken.
#include <spdlog/spdlog.h>

#include "server/api/call.h"
#include "server/api/services.h"

namespace raftlock::server {
namespace {

// Holders and waiters listed in the lock attached to an Acquire answer.
constexpr size_t kMaxListedInAnswer = 64;

}  // namespace

grpc::ServerUnaryReactor* LockService::Acquire(grpc::CallbackServerContext* context,
                                               const v1::LockAcquireRequest* request,
                                               v1::LockAcquireResponse* response) {
  auto call = UnaryCall<v1::LockAcquireResponse>::Create(context, response);
  v1::Command command;
  if (auto error = ApplyWriteId(request->write(), &command)) {
    call->Fail(*error);
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
  // Every answer carries the lock as it is once the outcome is applied, with
  // at most kMaxListedInAnswer holders and waiters: one entry can grant a
  // whole queue of shared waiters, and answers listing every holder would
  // cost the replica thread time and memory quadratic in the queue.
  auto fill = [replica, name](v1::LockAcquireResponse* out, bool acquired, uint64_t token,
                              uint64_t /*epoch*/, v1::NotAcquiredReason reason) {
    out->set_acquired(acquired);
    if (acquired) {
      out->set_token(token);
    } else {
      out->set_reason(reason);
    }
    if (auto info = replica->state().Describe(name, kMaxListedInAnswer)) {
      *out->mutable_lock() = *std::move(info);
    }
  };
  ProposeThen(
      replica, call, std::move(command),
      [api, replica, call, name, lease, fill](const v1::CommandResult& result,
                                              v1::LockAcquireResponse out) {
        const auto& outcome = result.lock_acquire();
        switch (outcome.outcome()) {
          case v1::ACQUIRE_OUTCOME_GRANTED:
            fill(&out, true, outcome.token(), 0, v1::NOT_ACQUIRED_REASON_UNSPECIFIED);
            call->Reply(std::move(out));
            return;
          case v1::ACQUIRE_OUTCOME_BUSY:
            fill(&out, false, 0, 0, v1::NOT_ACQUIRED_REASON_BUSY);
            call->Reply(std::move(out));
            return;
          case v1::ACQUIRE_OUTCOME_QUEUED:
            break;
          default:
            call->Complete(grpc::Status(grpc::StatusCode::INTERNAL, "unknown acquire outcome"));
            return;
        }
        // Queued. A retried Acquire may have been granted, or its wait
        // ended, since the first attempt: answer from the current state.
        if (auto token = replica->state().HoldToken(name, lease)) {
          fill(&out, true, *token, 0, v1::NOT_ACQUIRED_REASON_UNSPECIFIED);
          call->Reply(std::move(out));
          return;
        }
        if (!replica->state().Waits(name, lease)) {
          fill(&out, false, 0, 0,
               EndedWaitReason(replica->state(), lease, outcome.wait_deadline_ms()));
          call->Reply(std::move(out));
          return;
        }
        api->ParkUntilAnswered(/*election=*/false, name, lease, call, fill);
      });
  return call.get();
}

grpc::ServerUnaryReactor* LockService::Release(grpc::CallbackServerContext* context,
                                               const v1::LockReleaseRequest* request,
                                               v1::LockReleaseResponse* response) {
  auto call = UnaryCall<v1::LockReleaseResponse>::Create(context, response);
  v1::Command command;
  if (auto error = ApplyWriteId(request->write(), &command)) {
    call->Fail(*error);
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
  if (auto error = NameError(name, api_->replica().options().limits)) {
    call->Fail(*error);
    return call.get();
  }
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
  size_t limit = 0;
  if (grpc::Status s = ListLimit(request->limit(), &limit); !s.ok()) {
    call->Complete(s);
    return call.get();
  }
  ReadFor(&api_->replica(), call,
          [prefix = request->prefix(), after = request->after(), limit](
              const lock::LockStateMachine& state, v1::LockListResponse* out) {
            auto page = state.ListLocksPage(prefix, after, limit, kMaxListPageBytes);
            for (auto& info : page.entries) *out->add_locks() = std::move(info);
            out->set_more(page.more);
          });
  return call.get();
}

grpc::ServerUnaryReactor* LockService::ValidateToken(grpc::CallbackServerContext* context,
                                                     const v1::ValidateTokenRequest* request,
                                                     v1::ValidateTokenResponse* response) {
  auto call = UnaryCall<v1::ValidateTokenResponse>::Create(context, response);
  std::string name = request->name();
  if (auto error = NameError(name, api_->replica().options().limits)) {
    call->Fail(*error);
    return call.get();
  }
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
