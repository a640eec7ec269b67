#include "tests/integration/leader_client.h"

#include <thread>

namespace raftlock::testing {

LeaderClient::LeaderClient(std::vector<std::string> endpoints) : endpoints_(std::move(endpoints)) {
  preferred_ = endpoints_.front();
}

grpc::Channel* LeaderClient::ChannelTo(const std::string& endpoint) {
  auto& channel = channels_[endpoint];
  if (!channel) channel = grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials());
  return channel.get();
}

grpc::Status LeaderClient::Call(const Attempt& attempt, std::chrono::milliseconds timeout,
                                std::chrono::milliseconds per_attempt) {
  auto deadline = std::chrono::system_clock::now() + timeout;
  grpc::Status last(grpc::StatusCode::DEADLINE_EXCEEDED, "no attempt made");
  while (std::chrono::system_clock::now() < deadline) {
    grpc::ClientContext context;
    context.set_deadline(std::min(deadline, std::chrono::system_clock::now() + per_attempt));
    last = attempt(&context, ChannelTo(preferred_));
    if (last.error_code() != grpc::StatusCode::UNAVAILABLE &&
        last.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
      return last;
    }
    // Follow the hint if there is one; otherwise try the next endpoint.
    std::string next;
    auto trailers = context.GetServerTrailingMetadata();
    auto it = trailers.find("raftlock-leader-bin");
    if (it != trailers.end()) {
      v1::LeaderHint hint;
      if (hint.ParseFromString(std::string(it->second.data(), it->second.size())) &&
          !hint.leader_address().empty() && hint.leader_address() != preferred_) {
        next = hint.leader_address();
      }
    }
    if (next.empty()) {
      next = endpoints_[next_++ % endpoints_.size()];
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    preferred_ = next;
  }
  return last;
}

grpc::Status LeaderClient::GrantLease(int64_t ttl_ms, uint64_t* lease_id,
                                      std::chrono::milliseconds timeout) {
  v1::LeaseGrantRequest request;
  request.set_ttl_ms(ttl_ms);
  v1::LeaseGrantResponse response;
  grpc::Status status = Call(
      [&](grpc::ClientContext* context, grpc::Channel* channel) {
        return v1::Lease::NewStub(std::shared_ptr<grpc::Channel>(channel, [](grpc::Channel*) {}))
            ->Grant(context, request, &response);
      },
      timeout);
  *lease_id = response.lease_id();
  return status;
}

namespace {
// A non-owning shared_ptr for stubs over a channel the client owns.
std::shared_ptr<grpc::Channel> Borrow(grpc::Channel* channel) {
  return std::shared_ptr<grpc::Channel>(channel, [](grpc::Channel*) {});
}
}  // namespace

grpc::Status LeaderClient::Acquire(const v1::LockAcquireRequest& request,
                                   v1::LockAcquireResponse* response,
                                   std::chrono::milliseconds timeout) {
  auto per_attempt = std::chrono::milliseconds(request.wait_timeout_ms() + 1000);
  return Call(
      [&](grpc::ClientContext* context, grpc::Channel* channel) {
        return v1::Lock::NewStub(Borrow(channel))->Acquire(context, request, response);
      },
      timeout, per_attempt);
}

grpc::Status LeaderClient::Release(const std::string& name, uint64_t lease, uint64_t token,
                                   std::chrono::milliseconds timeout) {
  v1::LockReleaseRequest request;
  request.set_name(name);
  request.set_lease_id(lease);
  request.set_token(token);
  v1::LockReleaseResponse response;
  return Call(
      [&](grpc::ClientContext* context, grpc::Channel* channel) {
        return v1::Lock::NewStub(Borrow(channel))->Release(context, request, &response);
      },
      timeout);
}

grpc::Status LeaderClient::ListLocks(const v1::LockListRequest& request,
                                     v1::LockListResponse* response,
                                     std::chrono::milliseconds timeout) {
  return Call(
      [&](grpc::ClientContext* context, grpc::Channel* channel) {
        return v1::Lock::NewStub(Borrow(channel))->List(context, request, response);
      },
      timeout);
}

grpc::Status LeaderClient::ListLeases(const v1::LeaseListRequest& request,
                                      v1::LeaseListResponse* response,
                                      std::chrono::milliseconds timeout) {
  return Call(
      [&](grpc::ClientContext* context, grpc::Channel* channel) {
        return v1::Lease::NewStub(Borrow(channel))->List(context, request, response);
      },
      timeout);
}

grpc::Status LeaderClient::Describe(const std::string& name, v1::LockDescribeResponse* response,
                                    std::chrono::milliseconds timeout) {
  v1::LockDescribeRequest request;
  request.set_name(name);
  return Call(
      [&](grpc::ClientContext* context, grpc::Channel* channel) {
        return v1::Lock::NewStub(Borrow(channel))->Describe(context, request, response);
      },
      timeout);
}

grpc::Status LeaderClient::KeepAlive(uint64_t lease, v1::LeaseKeepAliveResponse* response,
                                     std::chrono::milliseconds timeout) {
  return Call(
      [&](grpc::ClientContext* context, grpc::Channel* channel) {
        auto stream = v1::Lease::NewStub(Borrow(channel))->KeepAlive(context);
        v1::LeaseKeepAliveRequest request;
        request.set_lease_id(lease);
        stream->Write(request);
        stream->WritesDone();
        bool got = stream->Read(response);
        grpc::Status status = stream->Finish();
        if (status.ok() && !got) return grpc::Status(grpc::StatusCode::UNKNOWN, "no response");
        return status;
      },
      timeout);
}

grpc::Status LeaderClient::TimeToLive(uint64_t lease, v1::LeaseTimeToLiveResponse* response,
                                      std::chrono::milliseconds timeout) {
  v1::LeaseTimeToLiveRequest request;
  request.set_lease_id(lease);
  return Call(
      [&](grpc::ClientContext* context, grpc::Channel* channel) {
        return v1::Lease::NewStub(Borrow(channel))->TimeToLive(context, request, response);
      },
      timeout);
}

}  // namespace raftlock::testing
