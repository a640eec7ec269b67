// The client-facing gRPC services (callback API). Each handler turns a
// request into a state-machine Command (writes) or a linearizable read, and
// answers from the replica loop; see client_api.h.
#pragma once

#include <mutex>
#include <string>

#include "proto/api.grpc.pb.h"
#include "proto/cluster.grpc.pb.h"
#include "server/api/client_api.h"
#include "server/api/observe_backlog.h"

namespace raftlock::server {

class LeaseService : public v1::Lease::CallbackService {
 public:
  explicit LeaseService(ClientApi* api) : api_(api) {}
  grpc::ServerUnaryReactor* Grant(grpc::CallbackServerContext* context,
                                  const v1::LeaseGrantRequest* request,
                                  v1::LeaseGrantResponse* response) override;
  grpc::ServerBidiReactor<v1::LeaseKeepAliveRequest, v1::LeaseKeepAliveResponse>* KeepAlive(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* Revoke(grpc::CallbackServerContext* context,
                                   const v1::LeaseRevokeRequest* request,
                                   v1::LeaseRevokeResponse* response) override;
  grpc::ServerUnaryReactor* TimeToLive(grpc::CallbackServerContext* context,
                                       const v1::LeaseTimeToLiveRequest* request,
                                       v1::LeaseTimeToLiveResponse* response) override;
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context,
                                 const v1::LeaseListRequest* request,
                                 v1::LeaseListResponse* response) override;

 private:
  ClientApi* const api_;
};

class LockService : public v1::Lock::CallbackService {
 public:
  explicit LockService(ClientApi* api) : api_(api) {}
  grpc::ServerUnaryReactor* Acquire(grpc::CallbackServerContext* context,
                                    const v1::LockAcquireRequest* request,
                                    v1::LockAcquireResponse* response) override;
  grpc::ServerUnaryReactor* Release(grpc::CallbackServerContext* context,
                                    const v1::LockReleaseRequest* request,
                                    v1::LockReleaseResponse* response) override;
  grpc::ServerUnaryReactor* Describe(grpc::CallbackServerContext* context,
                                     const v1::LockDescribeRequest* request,
                                     v1::LockDescribeResponse* response) override;
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context,
                                 const v1::LockListRequest* request,
                                 v1::LockListResponse* response) override;
  grpc::ServerUnaryReactor* ValidateToken(grpc::CallbackServerContext* context,
                                          const v1::ValidateTokenRequest* request,
                                          v1::ValidateTokenResponse* response) override;

 private:
  ClientApi* const api_;
};

class ElectionService : public v1::Election::CallbackService {
 public:
  explicit ElectionService(ClientApi* api) : api_(api) {}
  grpc::ServerUnaryReactor* Campaign(grpc::CallbackServerContext* context,
                                     const v1::CampaignRequest* request,
                                     v1::CampaignResponse* response) override;
  grpc::ServerUnaryReactor* Proclaim(grpc::CallbackServerContext* context,
                                     const v1::ProclaimRequest* request,
                                     v1::ProclaimResponse* response) override;
  grpc::ServerUnaryReactor* Resign(grpc::CallbackServerContext* context,
                                   const v1::ResignRequest* request,
                                   v1::ResignResponse* response) override;
  grpc::ServerUnaryReactor* Leader(grpc::CallbackServerContext* context,
                                   const v1::LeaderRequest* request,
                                   v1::LeaderResponse* response) override;
  grpc::ServerWriteReactor<v1::ObserveResponse>* Observe(
      grpc::CallbackServerContext* context, const v1::ObserveRequest* request) override;

 private:
  ClientApi* const api_;
};

class ClusterService : public v1::Cluster::CallbackService {
 public:
  explicit ClusterService(ClientApi* api) : api_(api) {}
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* context,
                                   const v1::StatusRequest* request,
                                   v1::StatusResponse* response) override;
  grpc::ServerUnaryReactor* Members(grpc::CallbackServerContext* context,
                                    const v1::MembersRequest* request,
                                    v1::MembersResponse* response) override;
  grpc::ServerUnaryReactor* TransferLeadership(grpc::CallbackServerContext* context,
                                               const v1::TransferLeadershipRequest* request,
                                               v1::TransferLeadershipResponse* response) override;

 private:
  ClientApi* const api_;
};

// One Observe stream: the initial state or missed events, then every change
// of the election, in epoch order. Events are pushed from the replica loop;
// a stream whose client reads too slowly gets a "skipped" message with the
// current state instead of an unbounded queue.
class ObserveStream : public grpc::ServerWriteReactor<v1::ObserveResponse> {
 public:
  // `context` is the call's: valid until OnDone, used only before Finish.
  ObserveStream(grpc::CallbackServerContext* context, ClientApi* api, std::string name,
                uint64_t after_epoch);
  // Queues an event (loop thread).
  void Push(const v1::ElectionEvent& event, const v1::ElectionInfo& current);
  // Ends the stream with `error` (its status and trailers, e.g. the leader
  // hint) at once; queued messages are dropped. Later calls change nothing.
  void End(const CallError& error);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  void Start();
  // The read callback's last step: clears read_pending_, and deletes the
  // stream if OnDone already ran (OnDone leaves deletion to a pending read,
  // so the callback never touches a deleted stream).
  void EndRead();
  // Starts the next write if idle. Requires mu_ NOT held.
  void Pump();

  static constexpr size_t kMaxQueued = 256;
  grpc::CallbackServerContext* const context_;
  ClientApi* const api_;
  const std::string name_;
  const uint64_t after_epoch_;
  std::mutex mu_;
  ObserveBacklog backlog_{kMaxQueued};
  v1::ObserveResponse writing_message_;
  bool writing_ = false;
  bool finishing_ = false;  // Finish requested
  bool finish_called_ = false;
  CallError finish_error_;
  bool registered_ = false;
  bool read_pending_ = false;
  bool done_ = false;
};

}  // namespace raftlock::server
