// Cluster admin service: Status, Members, TransferLeadership.
#include "server/api/call.h"
#include "server/api/services.h"

namespace raftlock::server {

grpc::ServerUnaryReactor* ClusterService::Status(grpc::CallbackServerContext* context,
                                                 const v1::StatusRequest* /*request*/,
                                                 v1::StatusResponse* response) {
  auto call = UnaryCall<v1::StatusResponse>::Create(context, response);
  Replica* replica = &api_->replica();
  replica->Status([call, replica](absl::StatusOr<v1::StatusResponse> status) {
    if (!status.ok()) {
      call->Fail(ReplicaError(status.status(), replica->leader()));
      return;
    }
    call->Reply(*std::move(status));
  });
  return call.get();
}

grpc::ServerUnaryReactor* ClusterService::Members(grpc::CallbackServerContext* context,
                                                  const v1::MembersRequest* /*request*/,
                                                  v1::MembersResponse* response) {
  auto call = UnaryCall<v1::MembersResponse>::Create(context, response);
  Replica* replica = &api_->replica();
  replica->Status([call, replica](absl::StatusOr<v1::StatusResponse> status) {
    if (!status.ok()) {
      call->Fail(ReplicaError(status.status(), replica->leader()));
      return;
    }
    v1::MembersResponse members;
    *members.mutable_members() = status->members();
    members.set_leader_id(status->leader_id());
    call->Reply(std::move(members));
  });
  return call.get();
}

grpc::ServerUnaryReactor* ClusterService::TransferLeadership(
    grpc::CallbackServerContext* context, const v1::TransferLeadershipRequest* request,
    v1::TransferLeadershipResponse* response) {
  auto call = UnaryCall<v1::TransferLeadershipResponse>::Create(context, response);
  if (request->target_id() == 0) {
    call->Complete(InvalidArgument("target_id", "must name a member (> 0)"));
    return call.get();
  }
  // Without a client deadline, give the transfer two seconds.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  auto client_deadline = context->deadline();
  if (client_deadline != std::chrono::system_clock::time_point::max()) {
    deadline = std::chrono::steady_clock::now() +
               std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                   client_deadline - std::chrono::system_clock::now());
  }
  api_->replica().TransferLeadership(request->target_id(), deadline,
                                     [call](absl::Status status, LeaderInfo leader) {
                                       if (!status.ok()) {
                                         call->Fail(ReplicaError(status, leader));
                                         return;
                                       }
                                       v1::TransferLeadershipResponse out;
                                       out.set_leader_id(leader.leader_id);
                                       out.set_term(leader.term);
                                       call->Reply(std::move(out));
                                     });
  return call.get();
}

}  // namespace raftlock::server
