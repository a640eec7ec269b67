#include "server/api/call.h"

namespace raftlock::server {

CallError ReplicaError(const absl::Status& status, const LeaderInfo& leader) {
  CallError error;
  grpc::StatusCode code = grpc::StatusCode::UNAVAILABLE;
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      code = grpc::StatusCode::INVALID_ARGUMENT;
      break;
    case absl::StatusCode::kDeadlineExceeded:
      code = grpc::StatusCode::DEADLINE_EXCEEDED;
      break;
    case absl::StatusCode::kAborted:
      code = grpc::StatusCode::ABORTED;
      break;
    case absl::StatusCode::kFailedPrecondition:
      code = grpc::StatusCode::FAILED_PRECONDITION;
      break;
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kInternal:
      code = grpc::StatusCode::INTERNAL;
      break;
    default:
      code = grpc::StatusCode::UNAVAILABLE;
  }
  error.status = grpc::Status(code, std::string(status.message()));
  v1::LeaderHint hint;
  hint.set_leader_id(leader.leader_id);
  hint.set_leader_address(leader.client_address);
  hint.set_term(leader.term);
  error.trailers.emplace_back(kLeaderHintKey, hint.SerializeAsString());
  return error;
}

CallError CommandError(const v1::CommandResult& result) {
  CallError error;
  error.status = grpc::Status(static_cast<grpc::StatusCode>(result.code()), result.message());
  error.trailers.emplace_back(kReasonKey, v1::ErrorReason_Name(result.reason()));
  return error;
}

std::optional<CallError> LockError(const lock::Error& error) {
  if (error.ok()) return std::nullopt;
  v1::CommandResult result;
  result.set_code(lock::CodeOf(error.reason));
  result.set_reason(error.reason);
  result.set_message(error.message);
  return CommandError(result);
}

std::optional<CallError> NameError(const std::string& name, const lock::Limits& limits) {
  return LockError(lock::CheckName(name, limits));
}

grpc::Status InvalidArgument(const std::string& field, const std::string& problem) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, field + ": " + problem);
}

grpc::Status ListLimit(uint32_t requested, size_t* limit) {
  if (requested > kMaxListLimit) {
    return InvalidArgument("limit", std::to_string(requested) + " exceeds " +
                                        std::to_string(kMaxListLimit) + " entries per page");
  }
  *limit = requested == 0 ? kDefaultListLimit : requested;
  return grpc::Status::OK;
}

void FillHeader(const Replica& replica, uint64_t applied_index, int64_t cluster_time_ms,
                bool duplicate, v1::ResponseHeader* header) {
  header->set_member_id(replica.node_id());
  header->set_raft_term(replica.leader().term);
  header->set_applied_index(applied_index);
  header->set_cluster_time_ms(cluster_time_ms);
  header->set_duplicate(duplicate);
}

std::optional<CallError> ApplyWriteId(const v1::WriteId& write, v1::Command* command) {
  if (write.client_id() != 0 && write.sequence() == 0) {
    return LockError({v1::ERROR_REASON_MALFORMED_COMMAND,
                      "write.sequence: must be >= 1 when write.client_id is set"});
  }
  command->set_client_id(write.client_id());
  command->set_sequence(write.sequence());
  return std::nullopt;
}

v1::NotAcquiredReason NotAcquiredReasonFor(v1::EndReason reason) {
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

v1::NotAcquiredReason EndedWaitReason(const lock::LockStateMachine& state, uint64_t lease,
                                      int64_t wait_deadline_ms) {
  if (!state.TimeToLive(lease).has_value()) return v1::NOT_ACQUIRED_REASON_LEASE_ENDED;
  if (state.cluster_time_ms() >= wait_deadline_ms) return v1::NOT_ACQUIRED_REASON_TIMED_OUT;
  return v1::NOT_ACQUIRED_REASON_CANCELLED;
}

}  // namespace raftlock::server
