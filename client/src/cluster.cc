#include "raftlock/cluster.h"

#include <future>

namespace raftlock {

const char* RoleName(v1::Role role) {
  switch (role) {
    case v1::ROLE_FOLLOWER:
      return "follower";
    case v1::ROLE_PRE_CANDIDATE:
      return "pre-candidate";
    case v1::ROLE_CANDIDATE:
      return "candidate";
    case v1::ROLE_LEADER:
      return "leader";
    default:
      return "unknown";
  }
}

absl::StatusOr<v1::StatusResponse> Cluster::Status(Deadline deadline) {
  return client_->Status(deadline);
}

std::vector<ReplicaStatus> Cluster::StatusAll(Deadline deadline) {
  std::vector<std::future<ReplicaStatus>> pending;
  for (const auto& endpoint : client_->options().endpoints) {
    pending.push_back(std::async(std::launch::async, [this, endpoint, deadline] {
      ReplicaStatus out;
      out.endpoint = endpoint;
      auto status = client_->Status(deadline, endpoint);
      if (status.ok()) {
        out.status = std::move(*status);
      } else {
        out.error = status.status();
      }
      return out;
    }));
  }
  std::vector<ReplicaStatus> out;
  for (auto& f : pending) out.push_back(f.get());
  return out;
}

absl::StatusOr<v1::MembersResponse> Cluster::Members(Deadline deadline) {
  return client_->Members(deadline);
}

absl::StatusOr<v1::TransferLeadershipResponse> Cluster::TransferLeadership(uint64_t target_id,
                                                                           Deadline deadline) {
  return client_->TransferLeadership(target_id, deadline);
}

}  // namespace raftlock
