// Cluster administration: status of every replica, the members, and moving
// Raft leadership to a chosen replica.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/cluster.pb.h"
#include "raftlock/client.h"

namespace raftlock {

// One replica's answer to Status, or why it could not be asked.
struct ReplicaStatus {
  std::string endpoint;
  absl::Status error;  // OK when `status` is filled
  v1::StatusResponse status;
};

// Thread-safe (it only holds the Client).
class Cluster {
 public:
  explicit Cluster(std::shared_ptr<Client> client) : client_(std::move(client)) {}

  // The presumed leader's view (or any replica's, if the leader is unknown).
  absl::StatusOr<v1::StatusResponse> Status(Deadline deadline);
  // Every endpoint of the client, asked in parallel; each with its own result.
  std::vector<ReplicaStatus> StatusAll(Deadline deadline);
  // The voter configuration and the leader id.
  absl::StatusOr<v1::MembersResponse> Members(Deadline deadline);
  // Promotes `target_id` (a voter) to Raft leader; returns when it leads.
  // INVALID_ARGUMENT if it is not a member; DEADLINE_EXCEEDED / ABORTED if the
  // transfer did not complete in time.
  absl::StatusOr<v1::TransferLeadershipResponse> TransferLeadership(uint64_t target_id,
                                                                    Deadline deadline);

 private:
  std::shared_ptr<Client> client_;
};

const char* RoleName(v1::Role role);

}  // namespace raftlock
