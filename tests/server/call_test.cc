// UnaryCall (server/api/call.h) on a real in-process gRPC server on
// 127.0.0.1: its cancellation hook runs exactly when the client gives up,
// including when the hook is set only after that happened.
#include "server/api/call.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "proto/cluster.grpc.pb.h"

namespace raftlock::server {
namespace {

using std::chrono::milliseconds;
using StatusCall = UnaryCall<v1::StatusResponse>;

// A Cluster service whose Status calls are parked: the test gets each call and
// never answers it.
class ParkingService final : public v1::Cluster::CallbackService {
 public:
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* context, const v1::StatusRequest*,
                                   v1::StatusResponse* response) override {
    auto call = StatusCall::Create(context, response);
    std::lock_guard<std::mutex> lock(mu_);
    call_ = call;
    arrived_.notify_all();
    return call.get();
  }

  std::shared_ptr<StatusCall> WaitForCall(milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    arrived_.wait_for(lock, timeout, [&] { return call_ != nullptr; });
    return call_;
  }

 private:
  std::mutex mu_;
  std::condition_variable arrived_;
  std::shared_ptr<StatusCall> call_;
};

// A server with ParkingService and one Status call to it whose client
// deadline is `client_deadline`.
struct ParkedStatusCall {
  ParkingService service;
  std::unique_ptr<grpc::Server> server;
  std::thread client;
  grpc::Status client_status;

  explicit ParkedStatusCall(milliseconds client_deadline) {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service);
    server = builder.BuildAndStart();
    REQUIRE(port != 0);
    client = std::thread([this, port, client_deadline] {
      auto stub = v1::Cluster::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                                           grpc::InsecureChannelCredentials()));
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + client_deadline);
      v1::StatusResponse response;
      client_status = stub->Status(&context, v1::StatusRequest(), &response);
    });
  }
  ~ParkedStatusCall() {
    if (client.joinable()) client.join();
    server->Shutdown(std::chrono::system_clock::now() + milliseconds(500));
  }
};

bool WaitUntil(const std::function<bool()>& done, milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

}  // namespace

TEST_CASE("UnaryCall runs its cancellation hook when the client's deadline passes",
          "[call][cancel]") {
  ParkedStatusCall parked(milliseconds(300));
  auto call = parked.service.WaitForCall(milliseconds(5000));
  REQUIRE(call != nullptr);
  std::atomic<int> hook_runs{0};
  call->SetOnCancel([&] { ++hook_runs; });
  REQUIRE(WaitUntil([&] { return call->finished(); }, milliseconds(5000)));
  parked.client.join();
  CHECK(parked.client_status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
  CHECK(hook_runs == 1);
}

// ClientApi parks a queued Acquire, then sets the hook that withdraws its
// wait. A hook set after (or while) OnCancel ran must still run, or the wait
// stays in the replicated queue although its client is gone.
TEST_CASE("UnaryCall runs a cancellation hook set after the client gave up, at once",
          "[call][cancel]") {
  ParkedStatusCall parked(milliseconds(200));
  auto call = parked.service.WaitForCall(milliseconds(5000));
  REQUIRE(call != nullptr);
  REQUIRE(WaitUntil([&] { return call->finished(); }, milliseconds(5000)));
  parked.client.join();
  int hook_runs = 0;
  call->SetOnCancel([&] { ++hook_runs; });
  CHECK(hook_runs == 1);
  CHECK_FALSE(call->Reply(v1::StatusResponse()));  // already answered CANCELLED
}

// A retried Acquire found neither holding nor waiting: why its wait ended is
// judged by the wait's own deadline, which an Acquire that joined an
// existing wait (already = true) reports, not by its own wait_timeout_ms.
TEST_CASE("EndedWaitReason: lease gone, the wait's own deadline passed, or withdrawn",
          "[call][exactly-once]") {
  lock::LockStateMachine sm;
  uint64_t index = 0;
  auto apply = [&](v1::Command c, int64_t now_ms) {
    c.set_cluster_time_ms(now_ms);
    return sm.Apply(++index, c).result;
  };
  v1::Command grant;
  grant.mutable_lease_grant()->set_ttl_ms(60000);
  const uint64_t holder = apply(grant, 0).lease_grant().lease_id();
  const uint64_t waiter = apply(grant, 0).lease_grant().lease_id();
  auto acquire = [&](uint64_t lease, int64_t wait_ms, int64_t now_ms) {
    v1::Command c;
    c.mutable_lock_acquire()->set_name("x");
    c.mutable_lock_acquire()->set_lease_id(lease);
    c.mutable_lock_acquire()->set_wait_timeout_ms(wait_ms);
    return apply(c, now_ms).lock_acquire();
  };
  REQUIRE(acquire(holder, 0, 0).outcome() == v1::ACQUIRE_OUTCOME_GRANTED);
  REQUIRE(acquire(waiter, 10000, 0).outcome() == v1::ACQUIRE_OUTCOME_QUEUED);
  const v1::LockAcquireResult joined = acquire(waiter, 10000, 8000);  // deadline still 10 s
  REQUIRE(joined.already());
  CHECK(EndedWaitReason(sm, waiter, joined.wait_deadline_ms()) ==
        v1::NOT_ACQUIRED_REASON_CANCELLED);  // at 8 s the wait was not due
  v1::Command tick;
  tick.mutable_time_advance();
  apply(tick, 11000);  // the wait times out at 10 s
  CHECK(EndedWaitReason(sm, waiter, joined.wait_deadline_ms()) ==
        v1::NOT_ACQUIRED_REASON_TIMED_OUT);
  v1::Command revoke;
  revoke.mutable_lease_revoke()->set_lease_id(waiter);
  apply(revoke, 11000);
  CHECK(EndedWaitReason(sm, waiter, joined.wait_deadline_ms()) ==
        v1::NOT_ACQUIRED_REASON_LEASE_ENDED);
}

}  // namespace raftlock::server
