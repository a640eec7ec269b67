// Shared pieces of the client API: a unary call that may be finished from any
// thread exactly once, and the mapping of replica and state-machine outcomes
// to gRPC statuses.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/api.pb.h"
#include "proto/cluster.pb.h"
#include "proto/lock.pb.h"
#include "server/lock/lock_state_machine.h"
#include "server/node/replica.h"

namespace raftlock::server {

// Trailing-metadata keys clients read on errors.
inline constexpr char kLeaderHintKey[] = "raftlock-leader-bin";  // serialized v1::LeaderHint
inline constexpr char kReasonKey[] = "raftlock-reason";          // v1::ErrorReason name

// An error answer: a status plus trailing metadata (leader hint, reason).
struct CallError {
  grpc::Status status;
  std::vector<std::pair<std::string, std::string>> trailers;
};

// A callback-API unary call whose answer may come from the replica loop, an
// event, or a cancellation, whichever is first. Owned jointly by gRPC (until
// OnDone) and whoever still holds a shared_ptr to it.
template <typename Response>
class UnaryCall : public grpc::ServerUnaryReactor {
 public:
  static std::shared_ptr<UnaryCall> Create(grpc::CallbackServerContext* context,
                                           Response* response) {
    auto call = std::shared_ptr<UnaryCall>(new UnaryCall(context, response));
    call->self_ = call;
    return call;
  }

  grpc::CallbackServerContext* context() const { return context_; }

  // Sends `response` with OK unless the call already finished; true if sent.
  bool Reply(Response response) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_) return false;
      finished_ = true;
      *response_ = std::move(response);
    }
    Finish(grpc::Status::OK);
    return true;
  }

  // Finishes the call with an error unless it already finished.
  bool Complete(const grpc::Status& status) { return Fail(CallError{status, {}}); }

  // Same, adding the error's trailing metadata.
  bool Fail(const CallError& error) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_) return false;
      finished_ = true;
      for (const auto& [key, value] : error.trailers) context_->AddTrailingMetadata(key, value);
    }
    Finish(error.status);
    return true;
  }
  bool finished() const {
    std::lock_guard<std::mutex> lock(mu_);
    return finished_;
  }

  // Runs `on_cancel` when the client cancels or its deadline passes (before
  // OnDone), or at once on this thread if that has already happened, so a
  // hook set while OnCancel runs is never missed.
  void SetOnCancel(std::function<void()> on_cancel) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!cancelled_) {
        on_cancel_ = std::move(on_cancel);
        return;
      }
    }
    on_cancel();
  }

  void OnCancel() override {
    std::function<void()> on_cancel;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled_ = true;
      on_cancel.swap(on_cancel_);
    }
    if (on_cancel) on_cancel();
    Complete(
        grpc::Status(grpc::StatusCode::CANCELLED, "the call was cancelled or its deadline passed"));
  }

  void OnDone() override {
    std::shared_ptr<UnaryCall> self;
    std::lock_guard<std::mutex> lock(mu_);
    on_cancel_ = nullptr;
    self.swap(self_);  // released when this scope ends (after the lock)
  }

 private:
  UnaryCall(grpc::CallbackServerContext* context, Response* response)
      : context_(context), response_(response) {}

  grpc::CallbackServerContext* const context_;
  Response* const response_;
  mutable std::mutex mu_;
  bool finished_ = false;
  bool cancelled_ = false;  // OnCancel has run (or is running)
  std::function<void()> on_cancel_;
  std::shared_ptr<UnaryCall> self_;
};

// The answer to an error from the replica (not leader, shutting down, lost
// leadership): its status, with the leader hint as trailing metadata.
CallError ReplicaError(const absl::Status& status, const LeaderInfo& leader);

// The answer to a failed CommandResult (code != 0), with its reason.
CallError CommandError(const v1::CommandResult& result);

// The answer to a lock::Error (its code and reason), or nullopt if it is ok.
std::optional<CallError> LockError(const lock::Error& error);

// For a read naming a lock or election: the error a write with `name` would
// get (INVALID_ARGUMENT, NAME_EMPTY / NAME_TOO_LONG), or nullopt if valid.
std::optional<CallError> NameError(const std::string& name, const lock::Limits& limits);

// An INVALID_ARGUMENT naming the field.
grpc::Status InvalidArgument(const std::string& field, const std::string& problem);

// List pages (Lease.List, Lock.List): a request's `limit` 0 means
// kDefaultListLimit; above kMaxListLimit is INVALID_ARGUMENT. A page stops
// before kMaxListPageBytes of entries (but takes the first entry whatever its
// size), far below gRPC's 4 MiB default unless one entry alone is larger.
inline constexpr uint32_t kDefaultListLimit = 1000;
inline constexpr uint32_t kMaxListLimit = 10000;
inline constexpr size_t kMaxListPageBytes = 1 << 20;

// Sets *limit to the page size a List request asks for (`requested`), or
// returns INVALID_ARGUMENT naming the `limit` field.
grpc::Status ListLimit(uint32_t requested, size_t* limit);

// Fills a ResponseHeader.
void FillHeader(const Replica& replica, uint64_t applied_index, int64_t cluster_time_ms,
                bool duplicate, v1::ResponseHeader* header);

// Copies a WriteId into a Command; the error (INVALID_ARGUMENT,
// MALFORMED_COMMAND) if it is inconsistent.
std::optional<CallError> ApplyWriteId(const v1::WriteId& write, v1::Command* command);

// ClientApi-free helpers used by every service.
// Proposes `command` for `call` and hands a successful result, with a
// response whose header is filled, to `handle(result, response)` on the
// replica loop; `handle` answers the call (or parks it). Errors finish it;
// a command failing lock::CheckCommand is answered at once, unproposed.
template <typename Response, typename Handle>
void ProposeThen(Replica* replica, std::shared_ptr<UnaryCall<Response>> call, v1::Command command,
                 Handle handle) {
  // Malformed input is refused by whichever replica gets it, before it costs
  // a log entry (the state machine would refuse it the same way).
  if (auto error = LockError(lock::CheckCommand(command, replica->options().limits))) {
    call->Fail(*error);
    return;
  }
  replica->Propose(std::move(command),
                   [replica, call, handle](absl::StatusOr<lock::ApplyResult> applied) mutable {
                     if (!applied.ok()) {
                       call->Fail(ReplicaError(applied.status(), replica->leader()));
                       return;
                     }
                     const v1::CommandResult& result = applied->result;
                     if (result.code() != 0) {
                       call->Fail(CommandError(result));
                       return;
                     }
                     Response response;
                     FillHeader(*replica, result.index(), result.cluster_time_ms(),
                                applied->duplicate, response.mutable_header());
                     handle(result, std::move(response));
                   });
}

// ProposeThen for a call answered at once: `fill(result, &response)`, then Reply.
template <typename Response, typename Fill>
void ProposeFor(Replica* replica, std::shared_ptr<UnaryCall<Response>> call, v1::Command command,
                Fill fill) {
  ProposeThen(replica, call, std::move(command),
              [call, fill](const v1::CommandResult& result, Response response) mutable {
                fill(result, &response);
                call->Reply(std::move(response));
              });
}

// Why a parked Acquire or Campaign ended without a grant, as the client sees it.
v1::NotAcquiredReason NotAcquiredReasonFor(v1::EndReason reason);

// Why the wait of a retried Acquire/Campaign, found neither holding nor
// waiting, ended: its lease is gone (LEASE_ENDED), its deadline passed
// (TIMED_OUT), or it was withdrawn before that (CANCELLED). `wait_deadline_ms`
// is the wait's end in cluster time, from the command's first QUEUED result.
v1::NotAcquiredReason EndedWaitReason(const lock::LockStateMachine& state, uint64_t lease,
                                      int64_t wait_deadline_ms);

// Runs `fill` against linearizable state for `call`.
template <typename Response, typename Fill>
void ReadFor(Replica* replica, std::shared_ptr<UnaryCall<Response>> call, Fill fill) {
  replica->LinearizableRead(
      [replica, call, fill](absl::Status status, const lock::LockStateMachine* state) mutable {
        if (!status.ok()) {
          call->Fail(ReplicaError(status, replica->leader()));
          return;
        }
        Response response;
        FillHeader(*replica, state->applied_index(), state->cluster_time_ms(), false,
                   response.mutable_header());
        fill(*state, &response);
        call->Reply(std::move(response));
      });
}

}  // namespace raftlock::server
