// The C++ SDK's Client and Cluster against a real 3-node cluster: leader
// discovery, redirects, retries across a leader crash, deadlines on every call
// (issue 6; DESIGN.md "client/": endpoints list, leader discovery and redirect,
// deadlines on every call, retries with backoff, cluster administration).
#include <catch2/catch.hpp>
#include <future>
#include <set>

#include "raftlock/cluster.h"
#include "raftlock/election.h"
#include "raftlock/mutex.h"
#include "tests/client/client_fixture.h"

using namespace raftlock;
using namespace raftlock::testing;

namespace {

v1::LeaseGrantRequest Grant(int64_t ttl_ms) {
  v1::LeaseGrantRequest request;
  request.set_ttl_ms(ttl_ms);
  return request;
}

namespace gx = grpc::experimental;

// Runs `after_first` (once) when the first successful Lease.List answer has
// arrived (a follower's redirect does not count), before the Client sees it:
// the test's way to act between two pages.
class AfterFirstLeaseList : public gx::Interceptor {
 public:
  AfterFirstLeaseList(gx::ClientRpcInfo* info, std::shared_ptr<std::function<void()>> after_first)
      : list_(std::string(info->method()).ends_with("Lease/List")),
        after_first_(std::move(after_first)) {}
  void Intercept(gx::InterceptorBatchMethods* methods) override {
    if (list_ && *after_first_ &&
        methods->QueryInterceptionHookPoint(gx::InterceptionHookPoints::POST_RECV_STATUS) &&
        methods->GetRecvStatus()->ok()) {
      auto run = std::move(*after_first_);
      *after_first_ = nullptr;
      run();
    }
    methods->Proceed();
  }

 private:
  const bool list_;
  const std::shared_ptr<std::function<void()>> after_first_;
};

class AfterFirstLeaseListFactory : public gx::ClientInterceptorFactoryInterface {
 public:
  explicit AfterFirstLeaseListFactory(std::shared_ptr<std::function<void()>> after_first)
      : after_first_(std::move(after_first)) {}
  gx::Interceptor* CreateClientInterceptor(gx::ClientRpcInfo* info) override {
    return new AfterFirstLeaseList(info, after_first_);
  }

 private:
  const std::shared_ptr<std::function<void()>> after_first_;
};

bool UnavailableOrDeadline(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable ||
         status.code() == absl::StatusCode::kDeadlineExceeded;
}

}  // namespace

TEST_CASE("Client finds the leader from an endpoint list that starts with a follower",
          "[client][sdk]") {
  TestCluster t;
  const std::string leader_address = t.cluster.ClientAddress(t.leader);
  const std::string follower_address = t.cluster.ClientAddress(t.Follower());

  // Rule: a follower's UNAVAILABLE + LeaderHint redirects the call.
  const std::string other_address = t.cluster.ClientAddress(6 - t.leader - t.Follower());
  auto client = t.NewClient({follower_address, other_address, leader_address});
  CHECK(client->leader_address().empty());  // connects lazily
  auto granted = client->LeaseGrant(Grant(5000), After(5s));
  INFO(granted.status().ToString());
  REQUIRE(granted.ok());
  CHECK(granted->lease_id() > 0);
  CHECK(client->leader_address() == leader_address);

  // Only a follower listed: the hint's address is used all the same.
  auto only_follower = t.NewClient({follower_address});
  auto listed = only_follower->LeaseList(After(5s));
  REQUIRE(listed.ok());
  CHECK(only_follower->leader_address() == leader_address);
  std::set<uint64_t> ids;
  for (const auto& lease : listed->leases()) ids.insert(lease.lease_id());
  CHECK(ids.count(granted->lease_id()) == 1);  // a linearizable read sees the grant

  // Rule: bad endpoint lists are refused up front (INVALID_ARGUMENT), no RPC.
  ClientOptions bad;
  CHECK(Client::Create(bad).status().code() == absl::StatusCode::kInvalidArgument);
  bad.endpoints = {"no-port"};
  CHECK(Client::Create(bad).status().code() == absl::StatusCode::kInvalidArgument);
  // Rule: pings faster than replicas accept are refused, naming the limit.
  bad.endpoints = {"127.0.0.1:1"};
  bad.ping_interval = 500ms;
  absl::Status too_fast = Client::Create(bad).status();
  CHECK(too_fast.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(too_fast.message()),
             Catch::Contains("ping_interval") && Catch::Contains("1000 ms"));
  bad.ping_interval = 2s;
  bad.ping_timeout = 0ms;
  absl::Status no_timeout = Client::Create(bad).status();
  CHECK(no_timeout.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(no_timeout.message()), Catch::Contains("ping_timeout"));
  bad.ping_timeout = 4s;
  bad.ping_interval = 0ms;  // no pings
  CHECK(Client::Create(bad).ok());
  CHECK(Client::ParseEndpoints(" a:1, b:2 ,,") == std::vector<std::string>{"a:1", "b:2"});
}

TEST_CASE("Client retries UNAVAILABLE with backoff across a leader SIGKILL inside the deadline",
          "[client][sdk][failover]") {
  TestCluster t;
  auto client = t.NewClient();
  auto session = t.NewSession(client, 3s);
  Mutex mutex(*session, "failover/held");
  REQUIRE(mutex.Lock(After(5s)).ok());
  const uint64_t token = mutex.token();
  REQUIRE(client->leader_address() == t.cluster.ClientAddress(t.leader));
  // Another session waits for the lock on the server when the leader dies.
  auto waiter_session = t.NewSession(t.NewClient(), 10s);
  Mutex waiter(*waiter_session, "failover/held");
  auto waiting = std::async(std::launch::async, [&] { return waiter.Lock(After(20s)); });
  REQUIRE(Eventually(5s, [&] {
    auto d = client->LockDescribe("failover/held", After(2s));
    return d.ok() && d->lock().waiters_size() == 1;
  }));

  // Rule: the call started right after the crash is retried (connection
  // refused, no leader yet) until a new leader answers, within its deadline.
  t.cluster.Kill(t.leader);
  auto start = Clock::now();
  auto granted = client->LeaseGrant(Grant(5000), After(8s));
  const double took = MillisSince(start);
  INFO("grant after leader kill took " << took << " ms: " << granted.status().ToString());
  REQUIRE(granted.ok());
  CHECK(took < 8000);
  CHECK(client->leader_address() != t.cluster.ClientAddress(t.leader));
  CHECK_FALSE(client->leader_address().empty());

  // Rule: the session's lease is kept alive through the failover, so its lock
  // is still held (same token) well after a TTL has passed.
  std::this_thread::sleep_for(3500ms);
  CHECK(session->state() == SessionState::kHealthy);
  CHECK(mutex.held());
  auto valid = client->ValidateToken("failover/held", token, After(5s));
  REQUIRE(valid.ok());
  CHECK(valid->valid());
  CHECK(valid->current_token() == token);

  // Rule: the waiting Lock, retried across the crash with its WriteId, is
  // still queued and is granted once the holder unlocks, with a larger token.
  REQUIRE(mutex.Unlock(After(5s)).ok());
  absl::Status waited = waiting.get();
  INFO(waited.ToString());
  REQUIRE(waited.ok());
  CHECK(waiter.token() > token);
  auto holders = client->LockDescribe("failover/held", After(5s));
  REQUIRE(holders.ok());
  REQUIRE(holders->lock().holders_size() == 1);
  CHECK(holders->lock().holders(0).lease_id() == waiter_session->lease_id());
}

TEST_CASE("every call has a deadline: without a quorum calls end UNAVAILABLE or DEADLINE_EXCEEDED",
          "[client][sdk][quorum]") {
  TestCluster t;
  auto client = t.NewClient({}, 500ms);
  auto session = t.NewSession(client, 30s);
  // Every kind of call, each with a 1 s deadline.
  auto check_all = [&](const std::string& situation) {
    const auto budget = 1000ms;
    const double slack_ms = 400;
    auto timed = [&](const std::string& what, const std::function<absl::Status()>& call,
                     double extra_ms = 0) {
      auto start = Clock::now();
      absl::Status status = call();
      const double took = MillisSince(start);
      INFO(situation << ": " << what << " -> " << status.ToString() << " after " << took << " ms");
      CHECK(UnavailableOrDeadline(status));
      CHECK(took < budget.count() + slack_ms + extra_ms);
    };
    timed("LeaseGrant", [&] { return client->LeaseGrant(Grant(5000), After(budget)).status(); });
    timed("LeaseList", [&] { return client->LeaseList(After(budget)).status(); });
    timed("LeaseKeepAlive",
          [&] { return client->LeaseKeepAlive(session->lease_id(), After(budget)).status(); });
    timed("LockDescribe", [&] { return client->LockDescribe("q", After(budget)).status(); });
    timed("Leader", [&] { return client->Leader("q", After(budget)).status(); });
    timed("TransferLeadership",
          [&] { return client->TransferLeadership(1, After(budget)).status(); });
    // A waiting Lock or Campaign keeps part of its deadline back to withdraw
    // a wait whose outcome is unknown, so it too ends by its deadline.
    timed("Mutex::Lock", [&] {
      Mutex mutex(*session, "quorum/lock");
      return mutex.Lock(After(budget));
    });
    timed("Election::Campaign", [&] {
      Election election(*session, "quorum/election");
      return election.Campaign("v", After(budget));
    });
  };

  SECTION("every node SIGSTOPped: attempts hang until their own timeout") {
    for (int id = 1; id <= 3; ++id) t.cluster.Pause(id);
    check_all("all paused");
    auto start = Clock::now();
    auto members = client->Members(After(1000ms));
    CHECK(UnavailableOrDeadline(members.status()));
    CHECK(MillisSince(start) < 1400);
    for (int id = 1; id <= 3; ++id) t.cluster.Resume(id);
  }
  SECTION("two of three nodes SIGKILLed: the survivor answers UNAVAILABLE") {
    const int survivor = t.leader;
    for (int id = 1; id <= 3; ++id) {
      if (id != survivor) t.cluster.Kill(id);
    }
    check_all("one of three alive");
    // Members and Status are answered by any replica, without a quorum.
    auto members = client->Members(After(2s));
    REQUIRE(members.ok());
    CHECK(members->members_size() == 3);
    // Cluster.Status of the survivor still answers: it needs no quorum.
    auto status = client->Status(After(2s), t.cluster.ClientAddress(survivor));
    REQUIRE(status.ok());
    CHECK(status->node_id() == static_cast<uint64_t>(survivor));
    for (int id = 1; id <= 3; ++id) {
      if (id != survivor) t.cluster.Start(id);
    }
  }
  // Recovery: the same client and session work again once a quorum is back.
  REQUIRE(t.cluster.WaitForLeader(10s) != 0);
  auto granted = client->LeaseGrant(Grant(5000), After(10s));
  INFO(granted.status().ToString());
  CHECK(granted.ok());
}

TEST_CASE("Cluster reports every replica's status and the members, and transfers leadership",
          "[client][sdk][cluster]") {
  TestCluster t;
  auto client = t.NewClient();
  Cluster cluster(client);

  auto all = cluster.StatusAll(After(5s));
  REQUIRE(all.size() == 3);
  int leaders = 0;
  std::set<uint64_t> ids;
  for (const auto& replica : all) {
    INFO(replica.endpoint << ": " << replica.error.ToString());
    REQUIRE(replica.error.ok());
    ids.insert(replica.status.node_id());
    CHECK(replica.status.leader_id() == static_cast<uint64_t>(t.leader));
    if (replica.status.role() == v1::ROLE_LEADER) {
      ++leaders;
      CHECK(replica.endpoint == t.cluster.ClientAddress(t.leader));
    }
  }
  CHECK(leaders == 1);
  CHECK(ids == std::set<uint64_t>{1, 2, 3});
  CHECK(std::string(RoleName(v1::ROLE_LEADER)) == "leader");

  auto status = cluster.Status(After(5s));
  REQUIRE(status.ok());
  CHECK(status->leader_id() == static_cast<uint64_t>(t.leader));

  auto members = cluster.Members(After(5s));
  REQUIRE(members.ok());
  CHECK(members->leader_id() == static_cast<uint64_t>(t.leader));
  REQUIRE(members->members_size() == 3);
  for (const auto& member : members->members()) {
    CHECK(member.voter());
    CHECK(member.client_address() == t.cluster.ClientAddress(static_cast<int>(member.id())));
    CHECK(member.peer_address() == t.cluster.PeerAddress(static_cast<int>(member.id())));
  }

  // Rule: TransferLeadership returns when the target leads.
  const int target = t.Follower();
  auto moved = cluster.TransferLeadership(target, After(10s));
  INFO(moved.status().ToString());
  REQUIRE(moved.ok());
  CHECK(moved->leader_id() == static_cast<uint64_t>(target));
  CHECK(t.cluster.WaitForLeader(5s) == target);
  // The client rediscovers the leader for its next write.
  auto granted = client->LeaseGrant(Grant(5000), After(5s));
  REQUIRE(granted.ok());
  CHECK(client->leader_address() == t.cluster.ClientAddress(target));

  // Rule: a target that is not a member is INVALID_ARGUMENT, at once.
  auto start = Clock::now();
  auto bad = cluster.TransferLeadership(99, After(5s));
  INFO(bad.status().ToString());
  CHECK(bad.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(MillisSince(start) < 4000);
}

TEST_CASE("LeaseList and LockList gather every page and refuse a page over 10000 entries",
          "[client][sdk][list]") {
  TestCluster t;
  auto client = t.NewClient(t.cluster.ClientAddresses());
  std::vector<uint64_t> granted;
  std::vector<std::string> names;
  for (int i = 0; i < 5; ++i) {
    auto lease = client->LeaseGrant(Grant(10000), After(5s));
    REQUIRE(lease.ok());
    granted.push_back(lease->lease_id());
    v1::LockAcquireRequest acquire;
    acquire.set_name("paged/" + std::to_string(i));
    acquire.set_lease_id(lease->lease_id());
    auto held = client->LockAcquire(acquire, After(5s));
    REQUIRE(held.ok());
    REQUIRE(held->acquired());
    names.push_back(acquire.name());
  }
  // Pages of 2: three calls each, gathered in order.
  auto leases = client->LeaseList(After(5s), 2);
  INFO(leases.status().ToString());
  REQUIRE(leases.ok());
  std::vector<uint64_t> listed;
  for (const auto& lease : leases->leases()) listed.push_back(lease.lease_id());
  CHECK(listed == granted);
  auto locks = client->LockList("paged/", After(5s), 2);
  REQUIRE(locks.ok());
  std::vector<std::string> listed_names;
  for (const auto& lock : locks->locks()) listed_names.push_back(lock.name());
  CHECK(listed_names == names);

  absl::Status too_big = client->LockList("", After(5s), 10001).status();
  CHECK(too_big.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(too_big.message()), Catch::Contains("limit") && Catch::Contains("10000"));
}

TEST_CASE("an answer over gRPC's default 4 MiB (a lease holding many long names) is received",
          "[client][sdk][limits]") {
  // 80 locks with 60 KiB names: the lease's TimeToLive lists them all (4.7 MiB).
  ConfigFile config("limits:\n  max_name_bytes: 65536\n");
  TestCluster t({"--config", config.path()});
  auto client = t.NewClient();
  auto lease = client->LeaseGrant(Grant(30000), After(5s));
  REQUIRE(lease.ok());
  for (int i = 0; i < 80; ++i) {
    v1::LockAcquireRequest acquire;
    acquire.set_name("big/" + std::to_string(i) + "/" + std::string(60 * 1024, 'n'));
    acquire.set_lease_id(lease->lease_id());
    auto held = client->LockAcquire(acquire, After(5s));
    REQUIRE(held.ok());
    REQUIRE(held->acquired());
  }
  auto info = client->LeaseTimeToLive(lease->lease_id(), After(10s));
  INFO(info.status().ToString());
  REQUIRE(info.ok());
  CHECK(info->ByteSizeLong() > (4u << 20));
  CHECK(info->lease().locks_size() == 80);
}

TEST_CASE("LeaseList leaves out leases granted after its first page, so it ends under grants",
          "[client][sdk][list]") {
  TestCluster t;
  auto other = t.NewClient();
  std::vector<uint64_t> before;
  for (int i = 0; i < 3; ++i) {
    auto lease = other->LeaseGrant(Grant(30000), After(5s));
    REQUIRE(lease.ok());
    before.push_back(lease->lease_id());
  }
  // Between the first page and the second, another client grants a lease.
  uint64_t granted_meanwhile = 0;
  auto after_first = std::make_shared<std::function<void()>>([&] {
    auto lease = other->LeaseGrant(Grant(30000), After(5s));
    if (lease.ok()) granted_meanwhile = lease->lease_id();
  });
  ClientOptions options;
  options.endpoints = t.cluster.ClientAddresses();
  options.interceptors = [after_first] {
    std::vector<std::unique_ptr<gx::ClientInterceptorFactoryInterface>> factories;
    factories.push_back(std::make_unique<AfterFirstLeaseListFactory>(after_first));
    return factories;
  };
  auto client = Client::Create(std::move(options));
  REQUIRE(client.ok());
  auto leases = (*client)->LeaseList(After(5s), 1);
  REQUIRE(leases.ok());
  REQUIRE(granted_meanwhile != 0);
  std::vector<uint64_t> listed;
  for (const auto& lease : leases->leases()) listed.push_back(lease.lease_id());
  CHECK(listed == before);
}
