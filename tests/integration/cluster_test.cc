// Integration: real raftlockd processes on 127.0.0.1 -- election, serving
// through any node, leadership transfer, quorum loss, whole-cluster restart.
#include <atomic>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "tests/integration/leader_client.h"
#include "tests/integration/process_cluster.h"
#include "tests/integration/test_util.h"

using namespace raftlock::testing;
using raftlock::v1::LockAcquireRequest;
using raftlock::v1::LockAcquireResponse;

namespace {

// An Acquire request; with `client_id`, it is that client's write number 1
// (exactly-once: a resend is a retry of the same write).
LockAcquireRequest AcquireRequest(const std::string& name, uint64_t lease, int64_t wait_ms = 0,
                                  uint64_t client_id = 0) {
  LockAcquireRequest request;
  request.set_name(name);
  request.set_lease_id(lease);
  request.set_wait_timeout_ms(wait_ms);
  if (client_id != 0) {
    request.mutable_write()->set_client_id(client_id);
    request.mutable_write()->set_sequence(1);
  }
  return request;
}

// Grants a lease and takes `name` through `client`, which starts at `endpoint`.
uint64_t TakeLockVia(const std::string& endpoint, const std::vector<std::string>& all,
                     const std::string& name) {
  std::vector<std::string> endpoints = {endpoint};
  endpoints.insert(endpoints.end(), all.begin(), all.end());
  LeaderClient client(endpoints);
  uint64_t lease = 0;
  REQUIRE(client.GrantLease(10000, &lease, 5s).ok());
  LockAcquireResponse response;
  grpc::Status status = client.Acquire(AcquireRequest(name, lease), &response, 5s);
  REQUIRE(status.ok());
  REQUIRE(response.acquired());
  return response.token();
}

// The LeaderHint in a finished call's trailers (a failed check if absent).
raftlock::v1::LeaderHint LeaderHintIn(const grpc::ClientContext& context) {
  raftlock::v1::LeaderHint hint;
  auto trailers = context.GetServerTrailingMetadata();
  auto it = trailers.find("raftlock-leader-bin");
  CHECK(it != trailers.end());
  if (it != trailers.end()) {
    CHECK(hint.ParseFromString(std::string(it->second.data(), it->second.size())));
  }
  return hint;
}

// The ErrorReason name in a finished call's trailers ("" if absent).
std::string ReasonIn(const grpc::ClientContext& context) {
  auto trailers = context.GetServerTrailingMetadata();
  auto it = trailers.find("raftlock-reason");
  if (it == trailers.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

}  // namespace

TEST_CASE("3 nodes elect exactly one leader and serve locks through any node", "[cluster]") {
  ProcessCluster cluster(3);
  cluster.StartAll();
  int leader = cluster.WaitForLeader(10s);
  REQUIRE(leader != 0);
  std::set<uint64_t> leaders;
  for (int id = 1; id <= 3; ++id) {
    auto status = cluster.Status(id);
    REQUIRE(status);
    if (status->role() == raftlock::v1::ROLE_LEADER) leaders.insert(status->node_id());
  }
  CHECK(leaders.size() == 1);
  uint64_t last_token = 0;
  for (int id = 1; id <= 3; ++id) {
    uint64_t token = TakeLockVia(cluster.ClientAddress(id), cluster.ClientAddresses(),
                                 "via-node-" + std::to_string(id));
    CHECK(token > last_token);  // log indexes: later grants get larger tokens
    last_token = token;
  }
}

TEST_CASE("5 nodes elect exactly one leader and serve locks through any node", "[cluster]") {
  ProcessCluster cluster(5);
  cluster.StartAll();
  int leader = cluster.WaitForLeader(10s);
  REQUIRE(leader != 0);
  for (int id = 1; id <= 5; ++id) {
    TakeLockVia(cluster.ClientAddress(id), cluster.ClientAddresses(), "five-" + std::to_string(id));
  }
}

TEST_CASE("a follower refuses a write with UNAVAILABLE and the leader's address", "[cluster]") {
  ProcessCluster cluster(3);
  cluster.StartAll();
  int leader = cluster.WaitForLeader(10s);
  REQUIRE(leader != 0);
  int follower = leader % 3 + 1;
  auto stub = raftlock::v1::Lease::NewStub(
      grpc::CreateChannel(cluster.ClientAddress(follower), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 2s);
  raftlock::v1::LeaseGrantRequest request;
  request.set_ttl_ms(5000);
  raftlock::v1::LeaseGrantResponse response;
  grpc::Status status = stub->Grant(&context, request, &response);
  REQUIRE(status.error_code() == grpc::StatusCode::UNAVAILABLE);
  const raftlock::v1::LeaderHint hint = LeaderHintIn(context);
  CHECK(hint.leader_id() == static_cast<uint64_t>(leader));
  CHECK(hint.leader_address() == cluster.ClientAddress(leader));
}

TEST_CASE("a follower ends KeepAlive and Observe streams UNAVAILABLE with the leader's address",
          "[cluster]") {
  ProcessCluster cluster(3);
  cluster.StartAll();
  int leader = cluster.WaitForLeader(10s);
  REQUIRE(leader != 0);
  LeaderClient client(cluster.ClientAddresses());
  uint64_t lease = 0;
  REQUIRE(client.GrantLease(10000, &lease, 5s).ok());
  int follower = leader % 3 + 1;
  auto channel =
      grpc::CreateChannel(cluster.ClientAddress(follower), grpc::InsecureChannelCredentials());
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 2s);
    auto stream = raftlock::v1::Lease::NewStub(channel)->KeepAlive(&context);
    raftlock::v1::LeaseKeepAliveRequest request;
    request.set_lease_id(lease);
    REQUIRE(stream->Write(request));
    stream->WritesDone();
    raftlock::v1::LeaseKeepAliveResponse response;
    CHECK_FALSE(stream->Read(&response));
    grpc::Status status = stream->Finish();
    REQUIRE(status.error_code() == grpc::StatusCode::UNAVAILABLE);
    const raftlock::v1::LeaderHint hint = LeaderHintIn(context);
    CHECK(hint.leader_id() == static_cast<uint64_t>(leader));
    CHECK(hint.leader_address() == cluster.ClientAddress(leader));
  }
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 2s);
    raftlock::v1::ObserveRequest request;
    request.set_name("observed-at-a-follower");
    auto reader = raftlock::v1::Election::NewStub(channel)->Observe(&context, request);
    raftlock::v1::ObserveResponse message;
    CHECK_FALSE(reader->Read(&message));
    grpc::Status status = reader->Finish();
    REQUIRE(status.error_code() == grpc::StatusCode::UNAVAILABLE);
    const raftlock::v1::LeaderHint hint = LeaderHintIn(context);
    CHECK(hint.leader_id() == static_cast<uint64_t>(leader));
    CHECK(hint.leader_address() == cluster.ClientAddress(leader));
  }
}

// The leader read and proposed every KeepAlive request at once, so a client
// that sent without reading the answers grew the leader's log (one entry per
// request) and its memory without bound. It now reads at most 64 unanswered
// requests; the rest wait in the client under flow control.
TEST_CASE("a KeepAlive stream whose answers are not read stops proposing", "[cluster][lease]") {
  ProcessCluster cluster(3);
  cluster.StartAll();
  int leader = cluster.WaitForLeader(10s);
  REQUIRE(leader != 0);
  LeaderClient client(cluster.ClientAddresses());
  uint64_t lease = 0;
  REQUIRE(client.GrantLease(60000, &lease, 5s).ok());
  leader = cluster.WaitForLeader(10s);
  auto last_index = [&] {
    auto status = cluster.Status(leader);
    REQUIRE(status);
    return status->last_index();
  };
  const uint64_t before = last_index();
  // A small receive window that does not grow, so unread answers soon stop
  // the leader's writes.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 1024);
  auto channel = grpc::CreateCustomChannel(cluster.ClientAddress(leader),
                                           grpc::InsecureChannelCredentials(), args);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 20s);
  auto stream = raftlock::v1::Lease::NewStub(channel)->KeepAlive(&context);
  std::atomic<int> written{0};
  std::thread writer([&] {
    raftlock::v1::LeaseKeepAliveRequest request;
    request.set_lease_id(lease);
    for (int i = 0; i < 20000 && stream->Write(request); ++i) written++;
  });
  std::this_thread::sleep_for(3s);  // the writer blocks once flow control is full
  const uint64_t grown = last_index() - before;
  context.TryCancel();
  writer.join();
  stream->Finish();
  INFO("requests written: " << written.load() << ", log entries added: " << grown);
  CHECK(written.load() > 200);
  // 64 keepalives plus the cluster-time entries of 3 s (about 140 in all);
  // before, one entry per request written.
  CHECK(grown < 1000);
}

TEST_CASE("any replica refuses a malformed write INVALID_ARGUMENT, and the log does not grow",
          "[cluster][validation]") {
  ProcessCluster cluster(3);
  cluster.StartAll();
  int leader = cluster.WaitForLeader(10s);
  REQUIRE(leader != 0);
  auto last_index = [&] {
    auto status = cluster.Status(leader);
    REQUIRE(status);
    return status->last_index();
  };
  const uint64_t before = last_index();  // no lease exists, so no TimeAdvance entries
  for (int id = 1; id <= 3; ++id) {
    INFO("replica " << id << (id == leader ? " (leader)" : " (follower)"));
    auto channel =
        grpc::CreateChannel(cluster.ClientAddress(id), grpc::InsecureChannelCredentials());
    {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + 2s);
      LockAcquireResponse response;
      grpc::Status status = raftlock::v1::Lock::NewStub(channel)->Acquire(
          &context, AcquireRequest("", 12345), &response);
      CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
      CHECK_THAT(status.error_message(), Catch::Contains("name"));
      CHECK(ReasonIn(context) == "ERROR_REASON_NAME_EMPTY");
    }
    {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + 2s);
      LockAcquireRequest request = AcquireRequest("valid-name", 12345);
      request.mutable_write()->set_client_id(7);  // and no sequence
      LockAcquireResponse response;
      grpc::Status status =
          raftlock::v1::Lock::NewStub(channel)->Acquire(&context, request, &response);
      CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
      CHECK_THAT(status.error_message(), Catch::Contains("write.sequence"));
      CHECK(ReasonIn(context) == "ERROR_REASON_MALFORMED_COMMAND");
    }
    {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + 2s);
      raftlock::v1::LeaseGrantRequest request;
      request.set_ttl_ms(1);
      raftlock::v1::LeaseGrantResponse response;
      grpc::Status status =
          raftlock::v1::Lease::NewStub(channel)->Grant(&context, request, &response);
      CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
      CHECK_THAT(status.error_message(), Catch::Contains("ttl_ms"));
    }
  }
  CHECK(last_index() == before);
}

TEST_CASE("Lease.List and Lock.List answer in pages that continue after the last entry",
          "[cluster][list]") {
  ProcessCluster cluster(3);
  cluster.StartAll();
  REQUIRE(cluster.WaitForLeader(10s) != 0);
  LeaderClient client(cluster.ClientAddresses());
  std::vector<uint64_t> leases;
  for (int i = 0; i < 3; ++i) {
    uint64_t lease = 0;
    REQUIRE(client.GrantLease(10000, &lease, 5s).ok());
    leases.push_back(lease);
    LockAcquireResponse response;
    REQUIRE(client.Acquire(AcquireRequest("page/" + std::to_string(i), lease), &response, 5s).ok());
    REQUIRE(response.acquired());
  }
  auto list_locks = [&](uint32_t limit, const std::string& after,
                        raftlock::v1::LockListResponse* out) {
    raftlock::v1::LockListRequest request;
    request.set_prefix("page/");
    request.set_limit(limit);
    request.set_after(after);
    return client.ListLocks(request, out, 5s);
  };
  raftlock::v1::LockListResponse first;
  REQUIRE(list_locks(2, "", &first).ok());
  REQUIRE(first.locks_size() == 2);
  CHECK(first.locks(0).name() == "page/0");
  CHECK(first.locks(1).name() == "page/1");
  CHECK(first.more());
  raftlock::v1::LockListResponse rest;
  REQUIRE(list_locks(2, first.locks(1).name(), &rest).ok());
  REQUIRE(rest.locks_size() == 1);
  CHECK(rest.locks(0).name() == "page/2");
  CHECK_FALSE(rest.more());
  raftlock::v1::LockListResponse refused;
  grpc::Status too_big = list_locks(10001, "", &refused);
  CHECK(too_big.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(too_big.error_message(), Catch::Contains("limit"));

  raftlock::v1::LeaseListRequest request;
  request.set_limit(1);
  request.set_after_id(leases[0]);
  raftlock::v1::LeaseListResponse page;
  REQUIRE(client.ListLeases(request, &page, 5s).ok());
  REQUIRE(page.leases_size() == 1);
  CHECK(page.leases(0).lease_id() == leases[1]);
  CHECK(page.more());
}

TEST_CASE("TransferLeadership moves the leader to the named replica", "[cluster][transfer]") {
  ProcessCluster cluster(3);
  cluster.StartAll();
  int leader = cluster.WaitForLeader(10s);
  REQUIRE(leader != 0);
  for (int round = 0; round < 3; ++round) {
    int target = leader % 3 + 1;
    raftlock::v1::TransferLeadershipResponse response;
    auto start = Clock::now();
    grpc::Status status = cluster.TransferLeadership(leader, target, &response);
    INFO("transfer took " << MillisSince(start) << " ms: " << status.error_message());
    REQUIRE(status.ok());
    CHECK(response.leader_id() == static_cast<uint64_t>(target));
    REQUIRE(cluster.WaitForLeader(5s) == target);
    leader = target;
    // The new leader serves writes.
    TakeLockVia(cluster.ClientAddress(target), cluster.ClientAddresses(),
                "after-transfer-" + std::to_string(round));
  }
}

TEST_CASE("a wait parked at a leader that loses leadership is answered UNAVAILABLE at once",
          "[cluster][transfer]") {
  ProcessCluster cluster(3);
  cluster.StartAll();
  const int leader = cluster.WaitForLeader(10s);
  REQUIRE(leader != 0);
  LeaderClient client(cluster.ClientAddresses());
  uint64_t holder = 0;
  uint64_t waiter = 0;
  REQUIRE(client.GrantLease(20000, &holder, 5s).ok());
  REQUIRE(client.GrantLease(20000, &waiter, 5s).ok());
  LockAcquireResponse held;
  REQUIRE(client.Acquire(AcquireRequest("moved/lock", holder), &held, 5s).ok());
  REQUIRE(held.acquired());

  // A raw Acquire parked at the leader, waiting up to 15 s.
  LockAcquireRequest wait = AcquireRequest("moved/lock", waiter, 15000, 77);
  auto stub = raftlock::v1::Lock::NewStub(
      grpc::CreateChannel(cluster.ClientAddress(leader), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 20s);
  LockAcquireResponse parked_answer;
  auto parked =
      std::async(std::launch::async, [&] { return stub->Acquire(&context, wait, &parked_answer); });
  REQUIRE(Eventually(5s, [&] {
    raftlock::v1::LockDescribeResponse d;
    return client.Describe("moved/lock", &d, 2s).ok() && d.lock().waiters_size() == 1;
  }));

  // Rule: a replica that stops leading answers its parked calls UNAVAILABLE
  // with the leader hint, at once. It may never apply the grant (cut off from
  // its peers), while the next leader can; the wait stays queued there.
  const int target = leader % 3 + 1;
  REQUIRE(cluster.TransferLeadership(leader, target).ok());
  REQUIRE(parked.wait_for(3s) == std::future_status::ready);
  grpc::Status status = parked.get();
  INFO(status.error_message());
  CHECK(status.error_code() == grpc::StatusCode::UNAVAILABLE);

  // The retry (same client_id and sequence) is parked again at the new leader
  // and granted when the holder releases.
  auto retried = std::async(std::launch::async, [&] {
    LockAcquireResponse response;
    grpc::Status result = client.Acquire(wait, &response, 15s);
    return std::make_pair(result, response);
  });
  REQUIRE(Eventually(5s, [&] {
    raftlock::v1::LockDescribeResponse d;
    return client.Describe("moved/lock", &d, 2s).ok() && d.lock().waiters_size() == 1;
  }));
  REQUIRE(client.Release("moved/lock", holder, held.token(), 5s).ok());
  REQUIRE(retried.wait_for(10s) == std::future_status::ready);
  auto [retry_status, retry_answer] = retried.get();
  INFO(retry_status.error_message());
  REQUIRE(retry_status.ok());
  CHECK(retry_answer.acquired());
  CHECK(retry_answer.token() > held.token());
}

// One entry grants a whole queue of shared waiters. Each answer listed every
// holder, so answering N waiters built N x N holder views on the replica
// thread (10,000 waiters: about 10^8, seconds past an election timeout). An
// answer now lists at most 64 holders and waiters, and counts all of them.
TEST_CASE("the answers of a burst of shared grants list a bounded part of the lock",
          "[cluster][lock]") {
  constexpr int kWaiters = 200;
  ProcessCluster cluster(3);
  cluster.StartAll();
  int leader = cluster.WaitForLeader(10s);
  REQUIRE(leader != 0);
  LeaderClient client(cluster.ClientAddresses());
  uint64_t holder = 0;
  REQUIRE(client.GrantLease(60000, &holder, 5s).ok());
  LockAcquireResponse held;
  REQUIRE(client.Acquire(AcquireRequest("readers/wide", holder), &held, 5s).ok());
  REQUIRE(held.acquired());
  std::vector<uint64_t> leases(kWaiters);
  for (auto& lease : leases) REQUIRE(client.GrantLease(60000, &lease, 5s).ok());
  leader = cluster.WaitForLeader(10s);
  const uint64_t term = cluster.Status(leader)->term();

  auto stub = raftlock::v1::Lock::NewStub(
      grpc::CreateChannel(cluster.ClientAddress(leader), grpc::InsecureChannelCredentials()));
  struct Parked {
    grpc::ClientContext context;
    LockAcquireRequest request;
    LockAcquireResponse response;
    grpc::Status status;
  };
  std::vector<std::unique_ptr<Parked>> parked;
  std::mutex mu;
  std::condition_variable answered_cv;
  int answered = 0;
  // On any exit, even a failed REQUIRE, no callback may outlive what it uses.
  struct CancelAndWait {
    std::function<void()> run;
    ~CancelAndWait() { run(); }
  } cancel_and_wait{[&] {
    for (auto& p : parked) p->context.TryCancel();
    std::unique_lock<std::mutex> lock(mu);
    answered_cv.wait(lock, [&] { return answered == static_cast<int>(parked.size()); });
  }};
  for (uint64_t lease : leases) {
    auto& p = parked.emplace_back(std::make_unique<Parked>());
    p->request = AcquireRequest("readers/wide", lease, 20000);
    p->request.set_mode(raftlock::v1::LOCK_MODE_SHARED);
    p->context.set_deadline(std::chrono::system_clock::now() + 30s);
    Parked* raw = p.get();
    stub->async()->Acquire(&raw->context, &raw->request, &raw->response,
                           [raw, &mu, &answered_cv, &answered](grpc::Status status) {
                             std::lock_guard<std::mutex> lock(mu);
                             raw->status = std::move(status);
                             ++answered;
                             answered_cv.notify_all();
                           });
  }
  REQUIRE(Eventually(10s, [&] {
    raftlock::v1::LockDescribeResponse d;
    return client.Describe("readers/wide", &d, 2s).ok() && d.lock().waiters_size() == kWaiters;
  }));
  REQUIRE(client.Release("readers/wide", holder, held.token(), 5s).ok());
  {
    std::unique_lock<std::mutex> lock(mu);
    REQUIRE(answered_cv.wait_for(lock, 20s, [&] { return answered == kWaiters; }));
  }
  uint64_t first_token = 0;
  for (const auto& p : parked) {
    INFO(p->status.error_message());
    REQUIRE(p->status.ok());
    REQUIRE(p->response.acquired());
    if (first_token == 0) first_token = p->response.token();
    CHECK(p->response.token() == first_token);  // one entry granted them all
    CHECK(p->response.lock().holder_count() == kWaiters);
    CHECK(p->response.lock().holders_size() == 64);
    CHECK(p->response.lock().waiter_count() == 0);
  }
  raftlock::v1::LockDescribeResponse described;
  REQUIRE(client.Describe("readers/wide", &described, 2s).ok());
  CHECK(described.lock().holders_size() == kWaiters);  // Describe lists all
  CHECK(described.lock().holder_count() == kWaiters);
  CHECK(cluster.Status(leader)->term() == term);
}

TEST_CASE("without a quorum writes fail UNAVAILABLE within their deadline, then recover",
          "[cluster][quorum]") {
  auto run = [](int size, int keep) {
    ProcessCluster cluster(size);
    cluster.StartAll();
    REQUIRE(cluster.WaitForLeader(10s) != 0);
    for (int id = keep + 1; id <= size; ++id) cluster.Kill(id);
    std::vector<std::string> alive;
    for (int id = 1; id <= keep; ++id) alive.push_back(cluster.ClientAddress(id));
    LeaderClient client(alive);
    uint64_t lease = 0;
    auto start = Clock::now();
    grpc::Status status = client.GrantLease(5000, &lease, 3s);
    double took = MillisSince(start);
    INFO("size " << size << " alive " << keep << ": " << status.error_message() << " after " << took
                 << " ms");
    CHECK((status.error_code() == grpc::StatusCode::UNAVAILABLE ||
           status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED));
    CHECK(took < 4000);  // answered within the deadline (plus scheduling slack)
    // Every individual attempt is answered UNAVAILABLE, never left hanging.
    for (int id = 1; id <= keep; ++id) {
      auto stub = raftlock::v1::Lease::NewStub(
          grpc::CreateChannel(cluster.ClientAddress(id), grpc::InsecureChannelCredentials()));
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + 3s);
      raftlock::v1::LeaseGrantRequest request;
      request.set_ttl_ms(5000);
      raftlock::v1::LeaseGrantResponse response;
      auto call_start = Clock::now();
      grpc::Status one = stub->Grant(&context, request, &response);
      INFO("node " << id << ": " << one.error_message());
      CHECK(one.error_code() == grpc::StatusCode::UNAVAILABLE);
      CHECK(MillisSince(call_start) < 2500);
    }
    for (int id = keep + 1; id <= size; ++id) cluster.Start(id);
    REQUIRE(cluster.WaitForLeader(10s) != 0);
    LeaderClient all(cluster.ClientAddresses());
    CHECK(all.GrantLease(5000, &lease, 10s).ok());
  };
  SECTION("2 of 5 alive") { run(5, 2); }
  SECTION("1 of 3 alive") { run(3, 1); }
}

TEST_CASE("stopping and restarting the whole cluster keeps locks, leases and tokens",
          "[cluster][durability]") {
  ProcessCluster cluster(3);
  cluster.StartAll();
  REQUIRE(cluster.WaitForLeader(10s) != 0);
  LeaderClient client(cluster.ClientAddresses());
  uint64_t lease = 0;
  REQUIRE(client.GrantLease(60000, &lease, 5s).ok());
  LockAcquireResponse held;
  REQUIRE(client.Acquire(AcquireRequest("durable", lease), &held, 5s).ok());
  REQUIRE(held.acquired());

  for (int id = 1; id <= 3; ++id) CHECK(cluster.Terminate(id) == 0);
  cluster.StartAll();
  REQUIRE(cluster.WaitForLeader(10s) != 0);

  LeaderClient after(cluster.ClientAddresses());
  raftlock::v1::LockDescribeResponse described;
  REQUIRE(after.Describe("durable", &described, 10s).ok());
  REQUIRE(described.found());
  REQUIRE(described.lock().holders_size() == 1);
  CHECK(described.lock().holders(0).lease_id() == lease);
  CHECK(described.lock().holders(0).token() == held.token());
  raftlock::v1::LeaseTimeToLiveResponse ttl;
  REQUIRE(after.TimeToLive(lease, &ttl, 5s).ok());
  CHECK(ttl.found());
  // A new holder after release gets a larger token than before the restart.
  REQUIRE(after.Release("durable", lease, held.token(), 5s).ok());
  LockAcquireResponse again;
  REQUIRE(after.Acquire(AcquireRequest("durable", lease), &again, 5s).ok());
  REQUIRE(again.acquired());
  CHECK(again.token() > held.token());
}

// A retried Acquire or Campaign (same client_id and sequence) whose wait has
// already ended is answered from the current state. It must say why the wait
// ended: LEASE_ENDED when its lease is gone, CANCELLED when the wait was
// withdrawn before its deadline (the SDKs then stop, or wait again), not
// TIMED_OUT for both.
TEST_CASE("a retried wait that already ended is answered with the reason it ended",
          "[cluster][exactly-once]") {
  ProcessCluster cluster(1);
  cluster.StartAll();
  REQUIRE(cluster.WaitForLeader(10s) == 1);
  LeaderClient client(cluster.ClientAddresses());
  uint64_t holder = 0, cancelled = 0, revoked = 0;
  REQUIRE(client.GrantLease(20000, &holder, 5s).ok());
  REQUIRE(client.GrantLease(20000, &cancelled, 5s).ok());
  REQUIRE(client.GrantLease(20000, &revoked, 5s).ok());
  LockAcquireResponse held;
  REQUIRE(client.Acquire(AcquireRequest("ended/lock", holder), &held, 5s).ok());
  REQUIRE(held.acquired());
  auto lock_stub = raftlock::v1::Lock::NewStub(
      grpc::CreateChannel(cluster.ClientAddress(1), grpc::InsecureChannelCredentials()));
  auto waiters = [&] {
    raftlock::v1::LockDescribeResponse d;
    return client.Describe("ended/lock", &d, 2s).ok() ? d.lock().waiters_size() : -1;
  };

  // A wait of 15 s whose call gives up after 1 s: the server withdraws it.
  LockAcquireRequest withdrawn = AcquireRequest("ended/lock", cancelled, 15000, 78);
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 1s);
    LockAcquireResponse answer;
    CHECK(lock_stub->Acquire(&context, withdrawn, &answer).error_code() ==
          grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  REQUIRE(Eventually(5s, [&] { return waiters() == 0; }));
  LockAcquireResponse retry;
  REQUIRE(client.Acquire(withdrawn, &retry, 5s).ok());
  CHECK_FALSE(retry.acquired());
  CHECK(retry.reason() == raftlock::v1::NOT_ACQUIRED_REASON_CANCELLED);

  // A wait whose lease is revoked under it.
  LockAcquireRequest orphaned = AcquireRequest("ended/lock", revoked, 15000, 79);
  grpc::ClientContext parked_context;
  parked_context.set_deadline(std::chrono::system_clock::now() + 20s);
  LockAcquireResponse parked_answer;
  auto parked = std::async(std::launch::async, [&] {
    return lock_stub->Acquire(&parked_context, orphaned, &parked_answer);
  });
  REQUIRE(Eventually(5s, [&] { return waiters() == 1; }));
  raftlock::v1::LeaseRevokeRequest revoke;
  revoke.set_lease_id(revoked);
  raftlock::v1::LeaseRevokeResponse revoke_answer;
  REQUIRE(client
              .Call(
                  [&](grpc::ClientContext* context, grpc::Channel* channel) {
                    return raftlock::v1::Lease::NewStub(
                               std::shared_ptr<grpc::Channel>(channel, [](grpc::Channel*) {}))
                        ->Revoke(context, revoke, &revoke_answer);
                  },
                  5s)
              .ok());
  REQUIRE(parked.wait_for(5s) == std::future_status::ready);
  REQUIRE(parked.get().ok());
  CHECK(parked_answer.reason() == raftlock::v1::NOT_ACQUIRED_REASON_LEASE_ENDED);
  REQUIRE(client.Acquire(orphaned, &retry, 5s).ok());
  CHECK_FALSE(retry.acquired());
  CHECK(retry.reason() == raftlock::v1::NOT_ACQUIRED_REASON_LEASE_ENDED);
}

// A retried Campaign that was queued at first and has since been elected
// answers the epoch of that election, not the election's latest event.
TEST_CASE("a retried campaign elected after waiting answers its ELECTED epoch",
          "[cluster][exactly-once][election]") {
  ProcessCluster cluster(1);
  cluster.StartAll();
  REQUIRE(cluster.WaitForLeader(10s) == 1);
  LeaderClient client(cluster.ClientAddresses());
  uint64_t first = 0, second = 0;
  REQUIRE(client.GrantLease(20000, &first, 5s).ok());
  REQUIRE(client.GrantLease(20000, &second, 5s).ok());
  auto stub = raftlock::v1::Election::NewStub(
      grpc::CreateChannel(cluster.ClientAddress(1), grpc::InsecureChannelCredentials()));
  auto campaign = [&](uint64_t lease, uint64_t client_id, int64_t wait_ms,
                      raftlock::v1::CampaignResponse* answer) {
    raftlock::v1::CampaignRequest request;
    request.mutable_write()->set_client_id(client_id);
    request.mutable_write()->set_sequence(1);
    request.set_name("svc/epoch");
    request.set_lease_id(lease);
    request.set_value("v");
    request.set_wait_timeout_ms(wait_ms);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 20s);
    return stub->Campaign(&context, request, answer);
  };
  raftlock::v1::CampaignResponse leading;
  REQUIRE(campaign(first, 80, 0, &leading).ok());
  REQUIRE(leading.elected());
  raftlock::v1::CampaignResponse waited;
  auto parked =
      std::async(std::launch::async, [&] { return campaign(second, 81, 15000, &waited); });
  REQUIRE(Eventually(5s, [&] {
    raftlock::v1::CampaignResponse probe;  // the first campaign again: the current state
    return campaign(first, 80, 0, &probe).ok() && probe.election().candidates_size() == 1;
  }));
  auto call = [&](auto method, const auto& request, auto* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 5s);
    return (stub.get()->*method)(&context, request, response);
  };
  raftlock::v1::ResignRequest resign;
  resign.set_name("svc/epoch");
  resign.set_lease_id(first);
  resign.set_token(leading.token());
  raftlock::v1::ResignResponse resigned;
  REQUIRE(call(&raftlock::v1::Election::Stub::Resign, resign, &resigned).ok());
  REQUIRE(parked.wait_for(5s) == std::future_status::ready);
  REQUIRE(parked.get().ok());
  REQUIRE(waited.elected());

  raftlock::v1::ProclaimRequest proclaim;
  proclaim.set_name("svc/epoch");
  proclaim.set_lease_id(second);
  proclaim.set_token(waited.token());
  proclaim.set_value("v2");
  raftlock::v1::ProclaimResponse proclaimed;
  REQUIRE(call(&raftlock::v1::Election::Stub::Proclaim, proclaim, &proclaimed).ok());
  REQUIRE(proclaimed.epoch() > waited.epoch());

  raftlock::v1::CampaignResponse retried;
  REQUIRE(campaign(second, 81, 15000, &retried).ok());
  CHECK(retried.elected());
  CHECK(retried.token() == waited.token());
  CHECK(retried.epoch() == waited.epoch());
}
