// raftlockctl elect, leader, observe, proclaim and resign against a real
// 3-node cluster (docs/semantics.md §4; client/ctl/election_commands.cc).
#include <signal.h>

#include <catch2/catch.hpp>
#include <sstream>

#include "tests/client/client_fixture.h"

using namespace raftlock;
using namespace raftlock::testing;

namespace {

std::vector<google::protobuf::Value> JsonLines(const std::string& text) {
  std::vector<google::protobuf::Value> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(ParseJson(line));
  }
  return out;
}

}  // namespace

TEST_CASE("raftlockctl elect, leader, observe, proclaim and resign", "[client][ctl][election]") {
  TestCluster t;
  // Nobody leads yet.
  auto empty = t.Ctl({"leader", "svc/db"});
  REQUIRE(empty.code == 0);
  CHECK(empty.out.find("no leader") != std::string::npos);

  // Rule: observe reports a bad name at once (2) rather than retrying forever.
  auto bad_name = t.Ctl({"observe", "", "--count", "1"}, 10s);
  INFO(bad_name.err);
  CHECK(bad_name.code == 2);

  auto observer = t.CtlStart({"-o", "json", "observe", "svc/db", "--count", "5"});
  REQUIRE(observer->WaitForOutput("CURRENT", 10s));  // subscribed before any change
  // Rule: elect prints when elected (epoch, token, lease) and holds.
  auto alpha = t.CtlStart({"-o", "json", "elect", "svc/db", "alpha"});
  REQUIRE(alpha->WaitForOutput("\"elected\": true", 10s));
  auto elected = ParseJson(alpha->Stdout());
  const uint64_t token = Number(Field(elected, "token"));
  const uint64_t lease = Number(Field(elected, "lease_id"));
  const uint64_t epoch = Number(Field(elected, "epoch"));
  CHECK(token > 0);
  CHECK(epoch > 0);
  CHECK(Field(elected, "value").string_value() == "alpha");

  // Rule: leader reports who leads, with the value as given.
  auto leader = t.Ctl({"-o", "json", "leader", "svc/db"});
  REQUIRE(leader.code == 0);
  auto info = ParseJson(leader.out);
  CHECK(Field(info, "has_leader").bool_value());
  CHECK(Number(Field(info, "leader_lease_id")) == lease);
  CHECK(Number(Field(info, "token")) == token);
  CHECK(Field(info, "value").string_value() == "alpha");
  auto table = t.Ctl({"leader", "svc/db"});
  REQUIRE(table.code == 0);
  CHECK(table.out.find("alpha") != std::string::npos);

  // Rule: while alpha leads, another campaign is "not acquired" (try once)
  // or "timeout" (a wait that runs out).
  auto busy = t.Ctl({"--timeout", "0", "elect", "svc/db", "beta"});
  INFO(busy.err);
  CHECK(busy.code == 3);
  auto waited = t.Ctl({"--timeout", "1s", "elect", "svc/db", "beta"});
  INFO(waited.err);
  CHECK(waited.code == 4);

  // proclaim with the leadership's lease and token; a wrong token is refused.
  auto proclaimed = t.Ctl({"-o", "json", "proclaim", "svc/db", "alpha-2", "--lease",
                           std::to_string(lease), "--token", std::to_string(token)});
  INFO(proclaimed.err);
  REQUIRE(proclaimed.code == 0);
  CHECK(Number(Field(ParseJson(proclaimed.out), "epoch")) > epoch);
  auto wrong = t.Ctl({"proclaim", "svc/db", "x", "--lease", std::to_string(lease), "--token",
                      std::to_string(token + 1000)});
  CHECK(wrong.code == 1);
  CHECK(wrong.err.find("WRONG_TOKEN") != std::string::npos);

  // A second candidate queues; interrupting alpha resigns and beta is elected.
  auto beta = t.CtlStart({"-o", "json", "elect", "svc/db", "beta"});
  REQUIRE(Eventually(5s, [&] {
    auto l = t.Ctl({"-o", "json", "leader", "svc/db"});
    return l.code == 0 && Field(ParseJson(l.out), "candidates").list_value().values_size() == 1;
  }));
  alpha->Signal(SIGTERM);
  auto alpha_code = alpha->Wait(10s);
  REQUIRE(alpha_code.has_value());
  CHECK(*alpha_code == 0);
  REQUIRE(beta->WaitForOutput("\"elected\": true", 10s));
  auto beta_json = ParseJson(beta->Stdout());
  CHECK(Number(Field(beta_json, "token")) > token);

  // Rule: resign with the leadership's token steps down (a NO_LEADER event).
  auto resigned = t.Ctl({"-o", "json", "resign", "svc/db", "--lease",
                         std::to_string(Number(Field(beta_json, "lease_id"))), "--token",
                         std::to_string(Number(Field(beta_json, "token")))});
  INFO(resigned.err);
  REQUIRE(resigned.code == 0);
  CHECK(Field(ParseJson(resigned.out), "was_leader").bool_value());

  // The observer printed: CURRENT (nobody), ELECTED alpha, PROCLAIMED alpha-2,
  // NO_LEADER, ELECTED beta; then exited because of --count 5.
  auto observed = observer->Wait(10s);
  INFO(observer->Stdout() << observer->Stderr());
  REQUIRE(observed.has_value());
  CHECK(*observed == 0);
  auto events = JsonLines(observer->Stdout());
  REQUIRE(events.size() == 5);
  CHECK(Field(events[0], "event").string_value() == "CURRENT");
  CHECK_FALSE(Field(events[0], "has_leader").bool_value());
  CHECK(Field(events[1], "event").string_value() == "ELECTED");
  CHECK(Field(events[1], "value").string_value() == "alpha");
  CHECK(Number(Field(events[1], "epoch")) == epoch);
  CHECK(Field(events[2], "event").string_value() == "PROCLAIMED");
  CHECK(Field(events[2], "value").string_value() == "alpha-2");
  CHECK(Field(events[3], "event").string_value() == "NO_LEADER");
  CHECK(Field(events[3], "reason").string_value() == "END_REASON_RELEASED");
  CHECK(Field(events[4], "event").string_value() == "ELECTED");
  CHECK(Field(events[4], "value").string_value() == "beta");
  for (size_t i = 2; i < events.size(); ++i) {
    CHECK(Number(Field(events[i], "epoch")) > Number(Field(events[i - 1], "epoch")));
  }

  // Resuming after an epoch replays only later events; --count not reached
  // within --timeout is "timeout" (4).
  auto resumed = t.Ctl({"-o", "json", "--timeout", "1s", "observe", "svc/db", "--after",
                        std::to_string(epoch), "--count", "10"});
  CHECK(resumed.code == 4);
  auto replay = JsonLines(resumed.out);
  REQUIRE(replay.size() >= 3);
  CHECK(Field(replay[0], "event").string_value() == "PROCLAIMED");
  CHECK(Field(replay.back(), "event").string_value() == "NO_LEADER");
}

TEST_CASE("raftlockctl JSON output stays valid for values that are not UTF-8 text",
          "[client][ctl][election]") {
  TestCluster t;
  auto elected = t.CtlStart({"-o", "json", "elect", "svc/bin", "caf\xc3\xa9"});
  REQUIRE(elected->WaitForOutput("\"elected\": true", 10s));
  auto json = ParseJson(elected->Stdout());
  CHECK(Field(json, "value").string_value() == "caf\xc3\xa9");  // UTF-8 passes through
  const std::string lease = std::to_string(Number(Field(json, "lease_id")));
  const std::string token = std::to_string(Number(Field(json, "token")));
  // Latin-1 e-acute, a stray continuation byte, a truncated sequence.
  auto proclaimed =
      t.Ctl({"proclaim", "svc/bin", "caf\xe9 \x80 \xe2\x82", "--lease", lease, "--token", token});
  INFO(proclaimed.err);
  REQUIRE(proclaimed.code == 0);
  auto leader = t.Ctl({"-o", "json", "leader", "svc/bin"});
  REQUIRE(leader.code == 0);
  CHECK(Field(ParseJson(leader.out), "value").string_value() ==
        "caf\xef\xbf\xbd \xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd");
  elected->Signal(SIGTERM);
  CHECK(elected->Wait(10s).has_value());
}
