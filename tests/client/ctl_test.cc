// raftlockctl run as a child process against a real 3-node cluster: lease,
// locks and cluster commands, --endpoints and RAFTLOCK_ENDPOINTS, --output
// table|json, and the exit codes (client/ctl/ctl.h: 2 bad input, 3 not
// acquired, 4 timeout, 5 unavailable).
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "raftlock/mutex.h"
#include "tests/client/client_fixture.h"

using namespace raftlock;
using namespace raftlock::testing;

namespace {

// A loopback port nobody listens on (bound once, then closed).
std::string UnusedEndpoint() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  socklen_t len = sizeof(addr);
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  close(fd);
  return "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
}

RunResult CtlNoCluster(std::vector<std::string> args,
                       std::vector<std::pair<std::string, std::string>> env = {}) {
  args.insert(args.begin(), RAFTLOCKCTL_PATH);
  return Run(std::move(args), std::move(env), 20s);
}

}  // namespace

TEST_CASE("raftlockctl stops at Ctrl-C even while a call waits for an unreachable cluster",
          "[client][ctl][signals]") {
  const std::string nowhere = UnusedEndpoint();
  for (int signal : {SIGINT, SIGTERM}) {
    ChildProcess ctl(
        {RAFTLOCKCTL_PATH, "--endpoints", nowhere, "--timeout", "60s", "locks", "list"});
    std::this_thread::sleep_for(500ms);  // retrying the unreachable endpoint
    ctl.Signal(signal);
    auto code = ctl.Wait(5s);  // not after the 60-s timeout
    REQUIRE(code.has_value());
    CHECK(*code == 128 + signal);
  }
}

TEST_CASE("raftlockctl exit codes for bad input (2) and an unreachable cluster (5)",
          "[client][ctl]") {
  const std::string nowhere = UnusedEndpoint();
  // Rule: usage errors and unparsable values are "bad input", before any RPC.
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"no-such-command"},
           {},
           {"--endpoints", nowhere, "lease", "grant", "soon"},
           {"--endpoints", nowhere, "--timeout", "forever", "lease", "list"},
           {"--endpoints", nowhere, "--output", "yaml", "lease", "list"},
           {"--endpoints", nowhere, "lock", "name-only"},
           {"--endpoints", "", "lease", "list"},
           {"--endpoints", "no-port", "lease", "list"},
           {"--endpoints", "127.0.0.1:abc", "lease", "list"},
           {"--endpoints", "127.0.0.1:0", "lease", "list"},
           {"--endpoints", "127.0.0.1:65536", "lease", "list"},
           // Negative ids and tokens are not wrapped into huge ones.
           {"--endpoints", nowhere, "lease", "ttl", "-1"},
           {"--endpoints", nowhere, "lease", "revoke", "-7"},
           {"--endpoints", nowhere, "locks", "validate", "x", "-5"},
           {"--endpoints", nowhere, "locks", "release", "x", "--lease", "1", "--token", "-2"},
           {"--endpoints", nowhere, "observe", "svc", "--count", "-3"},
           {"--endpoints", nowhere, "observe", "svc", "--after", "-1"},
           {"--endpoints", nowhere, "cluster", "transfer-leader", "0"},
           {"--endpoints", nowhere, "cluster", "transfer-leader", "-1"},
       }) {
    auto result = CtlNoCluster(args);
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    INFO("raftlockctl " << joined << "-> " << result.code << "\n" << result.err);
    CHECK(result.code == 2);
  }
  // An empty RAFTLOCK_ENDPOINTS is a mistake, not "use the default cluster".
  auto empty_env = CtlNoCluster({"--timeout", "1s", "lease", "list"}, {{"RAFTLOCK_ENDPOINTS", ""}});
  INFO(empty_env.err);
  CHECK(empty_env.code == 2);
  CHECK(empty_env.err.find("RAFTLOCK_ENDPOINTS") != std::string::npos);

  // --help is not an error.
  auto help = CtlNoCluster({"--help"});
  CHECK(help.code == 0);
  CHECK(help.out.find("Exit codes") != std::string::npos);

  // Rule: no replica reachable is "unavailable", by the --timeout.
  auto start = Clock::now();
  auto unreachable = CtlNoCluster({"--endpoints", nowhere, "--timeout", "1s", "lease", "list"});
  INFO(unreachable.err);
  CHECK(unreachable.code == 5);
  CHECK(MillisSince(start) < 3000);
  // The same through RAFTLOCK_ENDPOINTS.
  auto via_env =
      CtlNoCluster({"--timeout", "1s", "locks", "list"}, {{"RAFTLOCK_ENDPOINTS", nowhere}});
  INFO(via_env.err);
  CHECK(via_env.code == 5);
  auto status = CtlNoCluster({"--endpoints", nowhere, "--timeout", "1s", "cluster", "status"});
  CHECK(status.code == 5);
  // observe too: it does not wait out its timeout printing nothing and exit 0.
  auto observe = CtlNoCluster({"--endpoints", nowhere, "--timeout", "1s", "observe", "svc/x"});
  INFO(observe.err);
  CHECK(observe.code == 5);
}

TEST_CASE("raftlockctl lease grant, keepalive, ttl, list and revoke in table and json",
          "[client][ctl]") {
  TestCluster t;
  // Rule: RAFTLOCK_ENDPOINTS stands in for --endpoints.
  auto granted = Run({RAFTLOCKCTL_PATH, "-o", "json", "lease", "grant", "30s"},
                     {{"RAFTLOCK_ENDPOINTS", t.Endpoints()}});
  INFO(granted.err);
  REQUIRE(granted.code == 0);
  auto grant_json = ParseJson(granted.out);
  const uint64_t lease = Number(Field(grant_json, "lease_id"));
  CHECK(lease > 0);
  CHECK(Number(Field(grant_json, "ttl_ms")) == 30000);

  auto table = t.Ctl({"lease", "grant", "1.5s"});
  REQUIRE(table.code == 0);
  CHECK(table.out.find("LEASE") != std::string::npos);
  CHECK(table.out.find("1500") != std::string::npos);

  auto kept = t.Ctl({"-o", "json", "lease", "keepalive", "--once", std::to_string(lease)});
  INFO(kept.err);
  REQUIRE(kept.code == 0);
  CHECK(Number(Field(ParseJson(kept.out), "ttl_ms")) == 30000);

  // Without --once, keepalive runs until interrupted, then exits 0.
  auto keeper = t.CtlStart({"lease", "keepalive", std::to_string(lease)});
  REQUIRE(keeper->WaitForOutput("kept alive", 10s));
  keeper->Signal(SIGINT);
  auto keeper_code = keeper->Wait(5s);
  REQUIRE(keeper_code.has_value());
  CHECK(*keeper_code == 0);

  auto ttl = t.Ctl({"-o", "json", "lease", "ttl", std::to_string(lease)});
  REQUIRE(ttl.code == 0);
  auto info = ParseProtoJson<v1::LeaseTimeToLiveResponse>(ttl.out);
  CHECK(info.found());
  CHECK(info.lease().lease_id() == lease);
  CHECK(info.lease().ttl_ms() == 30000);
  CHECK(info.lease().ttl_remaining_ms() > 0);
  CHECK(info.lease().ttl_remaining_ms() <= 30000);

  // A lock held by the lease shows in ttl and is released by revoke.
  auto acquired =
      t.Ctl({"-o", "json", "locks", "acquire", "held/one", "--lease", std::to_string(lease)});
  REQUIRE(acquired.code == 0);
  auto listed = t.Ctl({"-o", "json", "lease", "list"});
  REQUIRE(listed.code == 0);
  auto list = ParseProtoJson<v1::LeaseListResponse>(listed.out);
  bool found = false;
  for (const auto& l : list.leases()) {
    if (l.lease_id() != lease) continue;
    found = true;
    REQUIRE(l.locks_size() == 1);
    CHECK(l.locks(0) == "held/one");
  }
  CHECK(found);
  auto list_table = t.Ctl({"lease", "list"});
  REQUIRE(list_table.code == 0);
  CHECK(list_table.out.find("held/one") != std::string::npos);

  auto revoked = t.Ctl({"-o", "json", "lease", "revoke", std::to_string(lease)});
  REQUIRE(revoked.code == 0);
  auto revoke_json = ParseJson(revoked.out);
  CHECK(Number(Field(revoke_json, "lease_id")) == lease);
  CHECK(Number(Field(revoke_json, "released_holds")) == 1);

  // Rule: a lease that no longer exists: ttl says found=false, exit 1.
  auto gone = t.Ctl({"-o", "json", "lease", "ttl", std::to_string(lease)});
  CHECK(gone.code == 1);
  CHECK_FALSE(ParseProtoJson<v1::LeaseTimeToLiveResponse>(gone.out).found());
  auto gone_keepalive = t.Ctl({"lease", "keepalive", "--once", std::to_string(lease)});
  CHECK(gone_keepalive.code == 1);
  // Rule: a TTL out of the server's range is bad input (INVALID_ARGUMENT).
  auto too_short = t.Ctl({"lease", "grant", "10ms"});
  INFO(too_short.err);
  CHECK(too_short.code == 2);
}

TEST_CASE("raftlockctl lease list and locks list show more than the server's 1000-entry page",
          "[client][ctl][list]") {
  TestCluster t;
  auto client = t.NewClient();
  constexpr int kMany = 1001;
  v1::LeaseGrantRequest grant;
  grant.set_ttl_ms(600000);  // outlives the 2000 writes on a slow machine
  uint64_t holder = 0;
  for (int i = 0; i < kMany; ++i) {
    auto lease = client->LeaseGrant(grant, After(5s));
    REQUIRE(lease.ok());
    holder = lease->lease_id();
  }
  for (int i = 0; i < kMany; ++i) {
    v1::LockAcquireRequest acquire;
    acquire.set_name("many/" + std::to_string(10000 + i));
    acquire.set_lease_id(holder);
    auto held = client->LockAcquire(acquire, After(5s));
    REQUIRE(held.ok());
    REQUIRE(held->acquired());
  }
  auto leases = t.Ctl({"-o", "json", "lease", "list"});
  REQUIRE(leases.code == 0);
  CHECK(ParseProtoJson<v1::LeaseListResponse>(leases.out).leases_size() == kMany);
  auto locks = t.Ctl({"-o", "json", "locks", "list", "many/"});
  REQUIRE(locks.code == 0);
  auto list = ParseProtoJson<v1::LockListResponse>(locks.out);
  REQUIRE(list.locks_size() == kMany);
  CHECK(list.locks(0).name() == "many/10000");
  CHECK(list.locks(kMany - 1).name() == "many/" + std::to_string(10000 + kMany - 1));
}

TEST_CASE("raftlockctl locks acquire, list, describe, validate and release with exit codes 3 and 4",
          "[client][ctl]") {
  TestCluster t;
  auto grant = [&] {
    auto r = t.Ctl({"-o", "json", "lease", "grant", "30s"});
    REQUIRE(r.code == 0);
    return std::to_string(Number(Field(ParseJson(r.out), "lease_id")));
  };
  const std::string lease_a = grant();
  const std::string lease_b = grant();

  auto got = t.Ctl({"-o", "json", "locks", "acquire", "jobs/nightly", "--lease", lease_a});
  REQUIRE(got.code == 0);
  auto got_json = ParseJson(got.out);
  CHECK(Field(got_json, "acquired").bool_value());
  const uint64_t token = Number(Field(got_json, "token"));
  CHECK(token > 0);

  // Rule: busy is "not acquired" (3); a wait that runs out is "timeout" (4).
  auto busy = t.Ctl({"-o", "json", "locks", "acquire", "jobs/nightly", "--lease", lease_b});
  CHECK(busy.code == 3);
  CHECK(Field(ParseJson(busy.out), "reason").string_value() == "NOT_ACQUIRED_REASON_BUSY");
  auto start = Clock::now();
  auto waited = t.Ctl(
      {"--timeout", "1s", "-o", "json", "locks", "acquire", "jobs/nightly", "--lease", lease_b});
  CHECK(waited.code == 4);
  CHECK(Field(ParseJson(waited.out), "reason").string_value() == "NOT_ACQUIRED_REASON_TIMED_OUT");
  CHECK(MillisSince(start) >= 1000);

  auto listed = t.Ctl({"-o", "json", "locks", "list", "jobs/"});
  REQUIRE(listed.code == 0);
  auto list = ParseProtoJson<v1::LockListResponse>(listed.out);
  REQUIRE(list.locks_size() == 1);
  CHECK(list.locks(0).name() == "jobs/nightly");
  auto none = t.Ctl({"-o", "json", "locks", "list", "other/"});
  REQUIRE(none.code == 0);
  CHECK(ParseProtoJson<v1::LockListResponse>(none.out).locks_size() == 0);
  auto table = t.Ctl({"locks", "list"});
  REQUIRE(table.code == 0);
  CHECK(table.out.find("NEWEST_TOKEN") != std::string::npos);
  CHECK(table.out.find(std::to_string(token)) != std::string::npos);

  auto described = t.Ctl({"-o", "json", "locks", "describe", "jobs/nightly"});
  REQUIRE(described.code == 0);
  auto d = ParseProtoJson<v1::LockDescribeResponse>(described.out);
  REQUIRE(d.found());
  REQUIRE(d.lock().holders_size() == 1);
  CHECK(std::to_string(d.lock().holders(0).lease_id()) == lease_a);
  CHECK(d.lock().holders(0).token() == token);
  auto described_table = t.Ctl({"locks", "describe", "jobs/nightly"});
  REQUIRE(described_table.code == 0);
  CHECK(described_table.out.find("holder") != std::string::npos);

  // Rule: validate exits 0 for the current token and 3 for any other.
  auto valid = t.Ctl({"-o", "json", "locks", "validate", "jobs/nightly", std::to_string(token)});
  CHECK(valid.code == 0);
  CHECK(Field(ParseJson(valid.out), "valid").bool_value());
  auto invalid =
      t.Ctl({"-o", "json", "locks", "validate", "jobs/nightly", std::to_string(token - 1)});
  CHECK(invalid.code == 3);
  CHECK(Number(Field(ParseJson(invalid.out), "current_token")) == token);

  // Rule: release is owner-checked: another lease's release changes nothing.
  auto wrong = t.Ctl(
      {"locks", "release", "jobs/nightly", "--lease", lease_b, "--token", std::to_string(token)});
  CHECK(wrong.code == 1);
  CHECK(wrong.err.find("NOT_HELD") != std::string::npos);
  auto released = t.Ctl({"-o", "json", "locks", "release", "jobs/nightly", "--lease", lease_a,
                         "--token", std::to_string(token)});
  REQUIRE(released.code == 0);
  CHECK(Field(ParseJson(released.out), "released").bool_value());
  auto next = t.Ctl({"-o", "json", "locks", "acquire", "jobs/nightly", "--lease", lease_b});
  REQUIRE(next.code == 0);
  CHECK(Number(Field(ParseJson(next.out), "token")) > token);
  auto free_now = t.Ctl({"-o", "json", "locks", "describe", "never/held"});
  REQUIRE(free_now.code == 0);
  CHECK_FALSE(ParseProtoJson<v1::LockDescribeResponse>(free_now.out).found());
  // Bad input from the server: an empty name is INVALID_ARGUMENT (2).
  auto empty = t.Ctl({"locks", "acquire", "", "--lease", lease_a});
  CHECK(empty.code == 2);
  // Rule: reads check names as writes do (docs/semantics.md §6): a name over
  // max_name_bytes (256) is INVALID_ARGUMENT naming the limit, not "not found".
  const std::string too_long(300, 'x');
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"locks", "describe", too_long},
                                             {"locks", "describe", ""},
                                             {"locks", "validate", too_long, "1"},
                                             {"leader", too_long}}) {
    auto read = t.Ctl(args);
    INFO(args[0] << " " << args[1] << ": " << read.code << " " << read.err);
    CHECK(read.code == 2);
    CHECK((read.err.find("max_name_bytes") != std::string::npos ||
           read.err.find("must not be empty") != std::string::npos));
  }
}

TEST_CASE("raftlockctl cluster status, members and transfer-leader", "[client][ctl]") {
  TestCluster t;
  auto status = t.Ctl({"-o", "json", "cluster", "status"});
  INFO(status.err);
  REQUIRE(status.code == 0);
  auto replicas = ParseJson(status.out);
  REQUIRE(replicas.kind_case() == google::protobuf::Value::kListValue);
  REQUIRE(replicas.list_value().values_size() == 3);
  int leaders = 0;
  for (const auto& replica : replicas.list_value().values()) {
    const auto& s = Field(replica, "status");
    CHECK(Number(Field(s, "leader_id")) == static_cast<uint64_t>(t.leader));
    if (Field(s, "role").string_value() == "ROLE_LEADER") ++leaders;
  }
  CHECK(leaders == 1);
  auto table = t.Ctl({"cluster", "status"});
  REQUIRE(table.code == 0);
  CHECK(table.out.find("leader") != std::string::npos);
  CHECK(table.out.find(t.cluster.ClientAddress(1)) != std::string::npos);

  auto members = t.Ctl({"-o", "json", "cluster", "members"});
  REQUIRE(members.code == 0);
  auto m = ParseProtoJson<v1::MembersResponse>(members.out);
  CHECK(m.members_size() == 3);
  CHECK(m.leader_id() == static_cast<uint64_t>(t.leader));

  // Rule: transfer-leader returns when the named node leads.
  const int target = t.Follower();
  auto moved = t.Ctl({"-o", "json", "cluster", "transfer-leader", std::to_string(target)});
  INFO(moved.err);
  REQUIRE(moved.code == 0);
  CHECK(Number(Field(ParseJson(moved.out), "leader_id")) == static_cast<uint64_t>(target));
  CHECK(t.cluster.WaitForLeader(5s) == target);
  auto not_member = t.Ctl({"cluster", "transfer-leader", "99"});
  INFO(not_member.err);
  CHECK(not_member.code == 2);

  // One node down: status still answers for the others and marks it.
  const int down = target % 3 + 1;
  t.cluster.Kill(down);
  auto partial = t.Ctl({"--timeout", "2s", "cluster", "status"});
  CHECK(partial.code == 0);
  CHECK(partial.out.find("unreachable") != std::string::npos);
}

// A client that stops answering without closing its connection (a crashed
// host, a partition, here SIGSTOP) would otherwise keep its parked call, and
// the wait it stands for, until the call's deadline, even while another
// process keeps the lease alive; and an Observe stream would never end.
TEST_CASE("raftlockd disconnects a client that stops answering its pings and withdraws its wait",
          "[client][ctl]") {
  TestCluster t({"--client-ping-ms", "1000"});
  auto client = t.NewClient();
  auto holder_session = t.NewSession(client);
  auto waiter_session = t.NewSession(client);  // kept alive by this test
  Mutex holder(*holder_session, "ping/lock");
  REQUIRE(holder.Lock(After(5s)).ok());

  ChildProcess waiter({RAFTLOCKCTL_PATH, "--endpoints", t.Endpoints(), "--timeout", "60s", "locks",
                       "acquire", "ping/lock", "--lease",
                       std::to_string(waiter_session->lease_id())});
  auto waiters = [&] {
    auto d = client->LockDescribe("ping/lock", After(2s));
    return d.ok() ? d->lock().waiters_size() : -1;
  };
  REQUIRE(Eventually(5s, [&] { return waiters() == 1; }));

  waiter.Signal(SIGSTOP);
  const auto stopped_at = Clock::now();
  // Unanswered pings close the connection within 2 x client-ping-ms.
  const bool withdrawn = Eventually(10s, [&] { return waiters() == 0; });
  const double took = MillisSince(stopped_at);
  waiter.Signal(SIGCONT);
  waiter.Signal(SIGKILL);
  CHECK(withdrawn);
  INFO("withdrawn after " << took << " ms");
  CHECK(took < 6000);
  // The lease lived on: only the wait of the vanished call is gone.
  CHECK(waiter_session->state() == SessionState::kHealthy);
  auto d = client->LockDescribe("ping/lock", After(2s));
  REQUIRE(d.ok());
  REQUIRE(d->lock().holders_size() == 1);
  CHECK(d->lock().holders(0).lease_id() == holder_session->lease_id());
}
