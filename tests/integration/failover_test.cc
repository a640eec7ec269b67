// Integration: failures of real processes -- leader SIGKILL during a stream of
// lock operations, catch-up from the log and by snapshot, a paused leader, and
// a lease whose client vanished.
#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>

#include "tests/integration/leader_client.h"
#include "tests/integration/process_cluster.h"
#include "tests/integration/test_util.h"

using namespace raftlock::testing;
using raftlock::v1::LockAcquireRequest;
using raftlock::v1::LockAcquireResponse;

namespace {

LockAcquireRequest AcquireRequest(const std::string& name, uint64_t lease, int64_t wait_ms = 0,
                                  uint64_t client_id = 0, uint64_t sequence = 0) {
  LockAcquireRequest request;
  request.set_name(name);
  request.set_lease_id(lease);
  request.set_wait_timeout_ms(wait_ms);
  request.mutable_write()->set_client_id(client_id);
  request.mutable_write()->set_sequence(sequence);
  return request;
}

bool LogContains(const ProcessCluster& cluster, int id, const std::string& needle) {
  std::ifstream in(cluster.LogPath(id));
  std::stringstream text;
  text << in.rdbuf();
  return text.str().find(needle) != std::string::npos;
}

uint64_t AppliedIndex(const ProcessCluster& cluster, int id) {
  auto status = cluster.Status(id);
  return status ? status->applied_index() : 0;
}

}  // namespace

TEST_CASE("leader SIGKILL during acquires: new leader, no acknowledged grant lost, tokens rise",
          "[failover]") {
  ProcessCluster cluster(3);
  cluster.StartAll();
  int leader = cluster.WaitForLeader(10s);
  REQUIRE(leader != 0);
  LeaderClient client(cluster.ClientAddresses());
  uint64_t lease = 0;
  REQUIRE(client.GrantLease(30000, &lease, 5s).ok());

  uint64_t last_token = 0;
  uint64_t client_id = 4242;
  uint64_t sequence = 0;
  std::vector<double> gaps;
  for (int kill = 0; kill < 3; ++kill) {
    // A stream of acquire/release cycles, each acknowledged grant checked.
    for (int i = 0; i < 20; ++i) {
      LockAcquireResponse held;
      REQUIRE(client.Acquire(AcquireRequest("stream", lease, 0, client_id, ++sequence), &held, 10s)
                  .ok());
      REQUIRE(held.acquired());
      CHECK(held.token() > last_token);
      last_token = held.token();
      REQUIRE(client.Release("stream", lease, held.token(), 10s).ok());
    }
    // Hold the lock across the kill: the acknowledged grant must survive.
    LockAcquireResponse held;
    REQUIRE(client
                .Acquire(
                    AcquireRequest("kept-" + std::to_string(kill), lease, 0, client_id, ++sequence),
                    &held, 10s)
                .ok());
    REQUIRE(held.acquired());
    cluster.Kill(leader);
    auto killed_at = Clock::now();
    LockAcquireResponse next;
    REQUIRE(
        client.Acquire(AcquireRequest("stream", lease, 0, client_id, ++sequence), &next, 10s).ok());
    gaps.push_back(MillisSince(killed_at));
    REQUIRE(next.acquired());
    CHECK(next.token() > last_token);
    last_token = next.token();
    REQUIRE(client.Release("stream", lease, next.token(), 10s).ok());
    raftlock::v1::LockDescribeResponse kept;
    REQUIRE(client.Describe("kept-" + std::to_string(kill), &kept, 10s).ok());
    REQUIRE(kept.found());
    REQUIRE(kept.lock().holders_size() == 1);
    CHECK(kept.lock().holders(0).token() == held.token());

    // The killed node restarts and catches up from the log.
    int restarted = leader;
    cluster.Start(restarted);
    leader = cluster.WaitForLeader(10s);
    REQUIRE(leader != 0);
    auto leader_status = cluster.Status(leader);
    REQUIRE(leader_status);
    uint64_t target = leader_status->commit_index();
    CHECK(Eventually(10s, [&] { return AppliedIndex(cluster, restarted) >= target; }));
  }
  for (double gap : gaps)
    std::cout << "failover: leader SIGKILL to next acquire " << gap << " ms\n";
}

TEST_CASE("a node that missed more than the compaction threshold catches up by snapshot",
          "[failover][snapshot]") {
  ProcessCluster cluster(3, {"--snapshot-interval", "50", "--snapshot-catchup-entries", "10"});
  cluster.StartAll();
  int leader = cluster.WaitForLeader(10s);
  REQUIRE(leader != 0);
  int lagging = leader % 3 + 1;
  cluster.Kill(lagging);
  LeaderClient client(cluster.ClientAddresses());
  uint64_t lease = 0;
  REQUIRE(client.GrantLease(30000, &lease, 5s).ok());
  for (int i = 0; i < 150; ++i) {
    LockAcquireResponse held;
    REQUIRE(
        client.Acquire(AcquireRequest("snap-" + std::to_string(i % 7), lease), &held, 10s).ok());
    REQUIRE(held.acquired());
    REQUIRE(client.Release("snap-" + std::to_string(i % 7), lease, held.token(), 10s).ok());
  }
  LockAcquireResponse kept;
  REQUIRE(client.Acquire(AcquireRequest("snap-kept", lease), &kept, 10s).ok());
  leader = cluster.WaitForLeader(10s);
  REQUIRE(leader != 0);
  uint64_t target = cluster.Status(leader)->commit_index();
  cluster.Start(lagging);
  REQUIRE(Eventually(15s, [&] { return AppliedIndex(cluster, lagging) >= target; }));
  INFO(cluster.LogTail(lagging));
  CHECK(LogContains(cluster, lagging, "installed snapshot"));
  // The caught-up node can lead and still knows the holder and its token.
  REQUIRE(cluster.TransferLeadership(leader, lagging).ok());
  raftlock::v1::LockDescribeResponse described;
  REQUIRE(client.Describe("snap-kept", &described, 10s).ok());
  REQUIRE(described.lock().holders_size() == 1);
  CHECK(described.lock().holders(0).token() == kept.token());
}

TEST_CASE("a paused leader steps down, no two clients ever hold the exclusive lock",
          "[failover][pause]") {
  ProcessCluster cluster(3);
  cluster.StartAll();
  int leader = cluster.WaitForLeader(10s);
  REQUIRE(leader != 0);
  uint64_t old_term = cluster.Status(leader)->term();

  std::atomic<int> holders{0};
  std::atomic<int> violations{0};
  std::atomic<int> grants{0};
  std::atomic<bool> stop{false};
  std::mutex fence_mu;
  uint64_t highest_token = 0;  // the guarded resource's fencing check
  auto worker = [&](int w) {
    LeaderClient client(cluster.ClientAddresses());
    uint64_t lease = 0;
    if (!client.GrantLease(20000, &lease, 10s).ok()) return;
    while (!stop) {
      LockAcquireResponse held;
      grpc::Status status = client.Acquire(AcquireRequest("exclusive", lease, 2000), &held, 5s);
      if (!status.ok() || !held.acquired()) continue;
      if (holders.fetch_add(1) != 0) violations++;
      {
        std::lock_guard<std::mutex> lock(fence_mu);
        if (held.token() <= highest_token) violations++;
        highest_token = held.token();
      }
      grants++;
      std::this_thread::sleep_for(2ms);
      holders.fetch_sub(1);
      client.Release("exclusive", lease, held.token(), 5s);
    }
  };
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) workers.emplace_back(worker, w);
  REQUIRE(Eventually(10s, [&] { return grants.load() >= 20; }));
  cluster.Pause(leader);
  int grants_at_pause = grants.load();
  std::this_thread::sleep_for(1500ms);  // well past the election timeout
  bool progressed = Eventually(5s, [&] { return grants.load() > grants_at_pause + 10; });
  cluster.Resume(leader);
  bool stepped_down = Eventually(5s, [&] {
    auto status = cluster.Status(leader);
    return status && status->role() != raftlock::v1::ROLE_LEADER && status->term() > old_term;
  });
  int grants_at_resume = grants.load();
  bool progressed_after = Eventually(5s, [&] { return grants.load() > grants_at_resume + 10; });
  stop = true;
  for (auto& t : workers) t.join();
  CHECK(progressed);
  CHECK(stepped_down);
  CHECK(progressed_after);
  CHECK(violations.load() == 0);
}

TEST_CASE("a vanished client's lease expires within TTL plus an election timeout, never before",
          "[failover][lease]") {
  ProcessCluster cluster(3);
  cluster.StartAll();
  REQUIRE(cluster.WaitForLeader(10s) != 0);
  LeaderClient client(cluster.ClientAddresses());
  uint64_t vanished = 0;
  uint64_t waiting = 0;
  const int64_t ttl_ms = 2000;
  REQUIRE(client.GrantLease(30000, &waiting, 5s).ok());
  auto granted_at = Clock::now();
  REQUIRE(client.GrantLease(ttl_ms, &vanished, 5s).ok());
  LockAcquireResponse held;
  REQUIRE(client.Acquire(AcquireRequest("orphan", vanished), &held, 5s).ok());
  REQUIRE(held.acquired());
  // The waiter queues; the holder never keeps its lease alive again.
  LockAcquireResponse next;
  REQUIRE(client.Acquire(AcquireRequest("orphan", waiting, 10000), &next, 15s).ok());
  double after = MillisSince(granted_at);
  REQUIRE(next.acquired());
  CHECK(next.token() > held.token());
  INFO("lock handed over " << after << " ms after the lease grant (TTL " << ttl_ms << " ms)");
  CHECK(after >= ttl_ms);              // never early
  CHECK(after <= ttl_ms + 500 + 500);  // TTL + one election timeout + slack
}

TEST_CASE("semantics 1: elections of freshly restarted nodes under load never advance cluster time",
          "[failover][time]") {
  // A node that becomes leader while Stepping its inbox can propose (a client
  // command arriving in the same batch, or a TimeAdvance) before it handles
  // the Ready reporting its new role. Its cluster clock then started from the
  // steady clock's epoch in a process that had never led: cluster time jumped
  // by the machine's uptime and every lease expired at once.
  ProcessCluster cluster(3);
  cluster.StartAll();
  REQUIRE(cluster.WaitForLeader(10s) != 0);
  LeaderClient client(cluster.ClientAddresses());
  uint64_t lease = 0;
  const int64_t ttl_ms = 60000;
  REQUIRE(client.GrantLease(ttl_ms, &lease, 5s).ok());
  const auto granted = Clock::now();

  // Writers that hit every replica directly, so proposals reach whichever
  // node is about to win an election.
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int writer = 0; writer < 12; ++writer) {
    const int id = writer % 3 + 1;
    writers.emplace_back([&, id, writer] {
      LeaderClient direct({cluster.ClientAddress(id)});
      uint64_t load_lease = 0;
      while (!stop && !direct.GrantLease(60000, &load_lease, 2s).ok()) {
      }
      for (int i = 0; !stop; ++i) {
        LockAcquireResponse response;
        (void)direct.Acquire(
            AcquireRequest("load/" + std::to_string(writer) + "/" + std::to_string(i % 4),
                           load_lease),
            &response, 200ms);
      }
    });
  }
  struct StopWriters {
    std::atomic<bool>& stop;
    std::vector<std::thread>& writers;
    ~StopWriters() {
      stop = true;
      for (auto& w : writers) w.join();
    }
  } stop_writers{stop, writers};

  for (int round = 0; round < 8; ++round) {
    const int leader = cluster.WaitForLeader(10s);
    REQUIRE(leader != 0);
    cluster.Kill(leader);
    REQUIRE(cluster.WaitForLeader(10s, {leader}) != 0);
    cluster.Start(leader);  // a fresh process that has never led
    std::this_thread::sleep_for(300ms);

    raftlock::v1::LeaseTimeToLiveResponse ttl;
    REQUIRE(client.TimeToLive(lease, &ttl, 5s).ok());
    INFO("round " << round << ": lease " << lease << " remaining " << ttl.lease().ttl_remaining_ms()
                  << " ms after " << MillisSince(granted) << " ms");
    REQUIRE(ttl.found());
    // Cluster time may lag real time (no leader: it stands still), never lead it.
    CHECK(ttl.lease().ttl_remaining_ms() >= ttl_ms - MillisSince(granted) - 100);
    CHECK(ttl.lease().ttl_remaining_ms() <= ttl_ms);
  }
}
