// LeaderClient: a minimal test client over raw gRPC stubs. It sends each call
// to the replica it believes leads, follows LeaderHint redirects, and retries
// UNAVAILABLE until the call's overall deadline. Independent of the SDK so the
// server is tested on its own.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "proto/api.grpc.pb.h"
#include "proto/cluster.grpc.pb.h"

namespace raftlock::testing {

class LeaderClient {
 public:
  explicit LeaderClient(std::vector<std::string> endpoints);

  // Runs `attempt` against endpoints until it returns something other than
  // UNAVAILABLE or `timeout` passes. Each attempt gets its own context whose
  // deadline is at most `per_attempt`. Returns the last status.
  using Attempt = std::function<grpc::Status(grpc::ClientContext*, grpc::Channel*)>;
  grpc::Status Call(const Attempt& attempt, std::chrono::milliseconds timeout,
                    std::chrono::milliseconds per_attempt = std::chrono::milliseconds(1000));

  // Convenience wrappers (client_id 0: no exactly-once unless `write` given).
  grpc::Status GrantLease(int64_t ttl_ms, uint64_t* lease_id, std::chrono::milliseconds timeout);
  grpc::Status Acquire(const v1::LockAcquireRequest& request, v1::LockAcquireResponse* response,
                       std::chrono::milliseconds timeout);
  grpc::Status Release(const std::string& name, uint64_t lease, uint64_t token,
                       std::chrono::milliseconds timeout);
  grpc::Status Describe(const std::string& name, v1::LockDescribeResponse* response,
                        std::chrono::milliseconds timeout);
  grpc::Status ListLocks(const v1::LockListRequest& request, v1::LockListResponse* response,
                         std::chrono::milliseconds timeout);
  grpc::Status ListLeases(const v1::LeaseListRequest& request, v1::LeaseListResponse* response,
                          std::chrono::milliseconds timeout);
  grpc::Status KeepAlive(uint64_t lease, v1::LeaseKeepAliveResponse* response,
                         std::chrono::milliseconds timeout);
  grpc::Status TimeToLive(uint64_t lease, v1::LeaseTimeToLiveResponse* response,
                          std::chrono::milliseconds timeout);

  // Sends a raw call to one endpoint (no redirect).
  grpc::Channel* ChannelTo(const std::string& endpoint);
  const std::string& preferred() const { return preferred_; }

 private:
  std::vector<std::string> endpoints_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;
  std::string preferred_;
  size_t next_ = 0;
};

}  // namespace raftlock::testing
