// Lease service: Grant, KeepAlive (bidi stream), Revoke, TimeToLive, List.
#include <spdlog/spdlog.h>

#include <deque>

#include "server/api/call.h"
#include "server/api/services.h"

namespace raftlock::server {

namespace {

// KeepAlive: every request is proposed as it arrives (pipelined); responses
// are written in request order, one write in flight at a time. At most
// kMaxUnansweredKeepAlives requests are read but not yet answered: past that
// the stream stops reading, so a client that sends without reading the
// answers is held back by flow control instead of growing the leader's
// memory and log. A failed request ends the stream after the answers of the
// requests before it are written.
constexpr uint64_t kMaxUnansweredKeepAlives = 64;

class KeepAliveStream
    : public grpc::ServerBidiReactor<v1::LeaseKeepAliveRequest, v1::LeaseKeepAliveResponse> {
 public:
  // `context` is the call's: valid until OnDone, used only before Finish.
  KeepAliveStream(grpc::CallbackServerContext* context, ClientApi* api)
      : context_(context), api_(api) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        reads_done_ = true;
      }
      Pump();
      return;
    }
    const uint64_t lease = request_.lease_id();
    uint64_t slot;
    bool read_next;
    {
      std::lock_guard<std::mutex> lock(mu_);
      slot = next_slot_++;
      outstanding_++;
      read_next = next_slot_ - next_write_ < kMaxUnansweredKeepAlives;
      read_paused_ = !read_next;  // PumpLocked resumes once answers are written
    }
    v1::Command command;
    command.mutable_lease_keep_alive()->set_lease_id(lease);
    Replica* replica = &api_->replica();
    replica->Propose(std::move(command), [this, replica, slot,
                                          lease](absl::StatusOr<lock::ApplyResult> applied) {
      v1::LeaseKeepAliveResponse response;
      std::optional<CallError> error;
      if (!applied.ok()) {
        error = ReplicaError(applied.status(), replica->leader());
      } else if (applied->result.code() != 0) {
        if (applied->result.reason() == v1::ERROR_REASON_LEASE_NOT_FOUND) {
          response.set_lease_id(lease);
          response.set_expired(true);
        } else {
          error = CommandError(applied->result);
        }
      } else {
        const auto& kept = applied->result.lease_keep_alive();
        response.set_lease_id(kept.lease_id());
        response.set_ttl_ms(kept.ttl_ms());
      }
      if (applied.ok()) {
        FillHeader(*replica, applied->result.index(), applied->result.cluster_time_ms(), false,
                   response.mutable_header());
      }
      Completed(slot, std::move(response), std::move(error));
    });
    if (read_next) StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_ = false;
      if (!ok) {
        failed_ = true;
        ready_.clear();
      }
    }
    Pump();
  }

  void OnDone() override {
    // Outstanding proposals still reference us; the last one to be answered
    // deletes (the loop answers every proposal: on commit, error or shutdown).
    std::unique_lock<std::mutex> lock(mu_);
    done_ = true;
    if (outstanding_ == 0) {
      lock.unlock();
      delete this;
    }
  }

 private:
  // Runs on the loop thread. Decides and acts in one step (PumpLocked): once
  // mu_ is released another thread may finish the stream and gRPC may delete
  // it, so nothing here touches the stream after the decision.
  void Completed(uint64_t slot, v1::LeaseKeepAliveResponse response,
                 std::optional<CallError> error) {
    std::unique_lock<std::mutex> lock(mu_);
    outstanding_--;
    if (done_) {
      if (outstanding_ == 0) {
        lock.unlock();
        delete this;
      }
      return;
    }
    if (error) {
      if (!error_slot_ || slot < *error_slot_) {
        error_slot_ = slot;
        finish_error_ = std::move(error);
      }
    } else {
      ready_[slot] = std::move(response);
    }
    PumpLocked(lock);
  }

  void Pump() {
    std::unique_lock<std::mutex> lock(mu_);
    PumpLocked(lock);
  }

  // Decides under mu_ (held by `lock`), releases it and acts: writes the next
  // in-order response, or finishes the stream (after a failed write, once
  // every answer before a failed request was written, or when the client is
  // done and every answer was written); and resumes reading once few enough
  // requests are unanswered. writing_ / finish_called_ / read_paused_ make
  // each action unique, so only this caller touches the stream until the
  // write or read completes or OnDone runs.
  void PumpLocked(std::unique_lock<std::mutex>& lock) {
    enum class Action { kNone, kWrite, kFinish } action = Action::kNone;
    grpc::Status status = grpc::Status::OK;
    if (writing_ || finish_called_) return;
    const bool error_next = error_slot_ && next_write_ >= *error_slot_;
    if (error_next || failed_) {
      action = Action::kFinish;
      if (finish_error_) {
        status = finish_error_->status;
        // Before Finish, by its only caller (finish_called_ is set below).
        for (const auto& [key, value] : finish_error_->trailers) {
          context_->AddTrailingMetadata(key, value);
        }
      }
    } else if (auto it = ready_.find(next_write_); it != ready_.end()) {
      response_ = std::move(it->second);
      ready_.erase(it);
      next_write_++;
      writing_ = true;
      action = Action::kWrite;
    } else if (reads_done_ && outstanding_ == 0 && ready_.empty()) {
      action = Action::kFinish;
    }
    if (action == Action::kFinish) finish_called_ = true;
    const bool resume_read = read_paused_ && !finish_called_ && !error_slot_ &&
                             next_slot_ - next_write_ < kMaxUnansweredKeepAlives;
    if (resume_read) read_paused_ = false;
    lock.unlock();
    if (action == Action::kWrite) StartWrite(&response_);
    if (action == Action::kFinish) Finish(status);
    if (resume_read) StartRead(&request_);
  }

  grpc::CallbackServerContext* const context_;
  ClientApi* const api_;
  v1::LeaseKeepAliveRequest request_;
  v1::LeaseKeepAliveResponse response_;
  std::mutex mu_;
  std::map<uint64_t, v1::LeaseKeepAliveResponse> ready_;
  uint64_t next_slot_ = 0;
  uint64_t next_write_ = 0;
  int outstanding_ = 0;
  bool writing_ = false;
  bool reads_done_ = false;
  bool failed_ = false;
  bool finish_called_ = false;
  bool done_ = false;
  bool read_paused_ = false;  // kMaxUnansweredKeepAlives reached; no read pending
  // The first request that failed, and its error: the stream ends there.
  std::optional<uint64_t> error_slot_;
  std::optional<CallError> finish_error_;
};

}  // namespace

grpc::ServerUnaryReactor* LeaseService::Grant(grpc::CallbackServerContext* context,
                                              const v1::LeaseGrantRequest* request,
                                              v1::LeaseGrantResponse* response) {
  auto call = UnaryCall<v1::LeaseGrantResponse>::Create(context, response);
  v1::Command command;
  if (auto error = ApplyWriteId(request->write(), &command)) {
    call->Fail(*error);
    return call.get();
  }
  command.mutable_lease_grant()->set_ttl_ms(request->ttl_ms());
  ProposeFor(&api_->replica(), call, std::move(command),
             [](const v1::CommandResult& result, v1::LeaseGrantResponse* out) {
               out->set_lease_id(result.lease_grant().lease_id());
               out->set_ttl_ms(result.lease_grant().ttl_ms());
             });
  return call.get();
}

grpc::ServerBidiReactor<v1::LeaseKeepAliveRequest, v1::LeaseKeepAliveResponse>*
LeaseService::KeepAlive(grpc::CallbackServerContext* context) {
  return new KeepAliveStream(context, api_);
}

grpc::ServerUnaryReactor* LeaseService::Revoke(grpc::CallbackServerContext* context,
                                               const v1::LeaseRevokeRequest* request,
                                               v1::LeaseRevokeResponse* response) {
  auto call = UnaryCall<v1::LeaseRevokeResponse>::Create(context, response);
  v1::Command command;
  if (auto error = ApplyWriteId(request->write(), &command)) {
    call->Fail(*error);
    return call.get();
  }
  command.mutable_lease_revoke()->set_lease_id(request->lease_id());
  ProposeFor(&api_->replica(), call, std::move(command),
             [](const v1::CommandResult& result, v1::LeaseRevokeResponse* out) {
               out->set_released_holds(result.lease_revoke().released_holds());
               out->set_cancelled_waits(result.lease_revoke().cancelled_waits());
             });
  return call.get();
}

grpc::ServerUnaryReactor* LeaseService::TimeToLive(grpc::CallbackServerContext* context,
                                                   const v1::LeaseTimeToLiveRequest* request,
                                                   v1::LeaseTimeToLiveResponse* response) {
  auto call = UnaryCall<v1::LeaseTimeToLiveResponse>::Create(context, response);
  const uint64_t lease = request->lease_id();
  ReadFor(&api_->replica(), call,
          [lease](const lock::LockStateMachine& state, v1::LeaseTimeToLiveResponse* out) {
            auto info = state.TimeToLive(lease);
            out->set_found(info.has_value());
            if (info) *out->mutable_lease() = *info;
          });
  return call.get();
}

grpc::ServerUnaryReactor* LeaseService::List(grpc::CallbackServerContext* context,
                                             const v1::LeaseListRequest* request,
                                             v1::LeaseListResponse* response) {
  auto call = UnaryCall<v1::LeaseListResponse>::Create(context, response);
  size_t limit = 0;
  if (grpc::Status s = ListLimit(request->limit(), &limit); !s.ok()) {
    call->Complete(s);
    return call.get();
  }
  ReadFor(&api_->replica(), call,
          [after_id = request->after_id(), limit](const lock::LockStateMachine& state,
                                                  v1::LeaseListResponse* out) {
            auto page = state.ListLeasesPage(after_id, limit, kMaxListPageBytes);
            for (auto& info : page.entries) *out->add_leases() = std::move(info);
            out->set_more(page.more);
          });
  return call.get();
}

}  // namespace raftlock::server
