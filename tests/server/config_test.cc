// raftlockd's configuration (server/config.h): every bad input is refused
// with an InvalidArgument that names the key and its limit, never an
// exception, and a good file reads back as written.
#include "server/config.h"

#include <catch2/catch.hpp>
#include <string>

using raftlock::server::LoadConfigFile;
using raftlock::server::ParseConfigYaml;
using raftlock::server::ParseMembersFlag;
using raftlock::server::ServerConfig;
using raftlock::server::ValidateConfig;

namespace {

// The error of parsing `yaml` (OK if it parsed); never throws.
absl::Status Parse(const std::string& yaml) {
  ServerConfig config;
  return ParseConfigYaml(yaml, &config);
}

// A valid one-node configuration that tests then break one field of.
ServerConfig ValidConfig() {
  ServerConfig config;
  config.node_id = 1;
  config.data_dir = "/tmp/unused";
  REQUIRE(ParseMembersFlag("1=127.0.0.1:7001/127.0.0.1:9001,2=127.0.0.1:7002/127.0.0.1:9002",
                           &config.members)
              .ok());
  return config;
}

void RequireInvalid(const absl::Status& status, const std::string& names) {
  INFO(status.ToString());
  REQUIRE(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()), Catch::Contains(names));
}

}  // namespace

TEST_CASE("config: a good file reads back as written", "[config]") {
  ServerConfig config;
  REQUIRE(ParseConfigYaml("cluster_id: c\nnode_id: 2\ndata_dir: /d\n"
                          "members:\n  - {id: 1, peer: 127.0.0.1:7001, client: 127.0.0.1:9001}\n"
                          "  - {id: 2, peer: 127.0.0.1:7002, client: 127.0.0.1:9002}\n"
                          "raft: {tick_ms: 10, heartbeat_ticks: 3, election_ticks: 20}\n"
                          "limits: {max_locks: 7}\nlog_level: warn\n",
                          &config)
              .ok());
  CHECK(config.cluster_id == "c");
  CHECK(config.node_id == 2);
  CHECK(config.members.size() == 2);
  CHECK(config.members.at(2).client == "127.0.0.1:9002");
  CHECK(config.election_ticks == 20);
  CHECK(config.limits.max_locks == 7);
  CHECK(ValidateConfig(&config).ok());
  CHECK(config.peer_listen == "127.0.0.1:7002");
}

TEST_CASE("config: a section of the wrong shape is an error, not a crash", "[config]") {
  RequireInvalid(Parse("raft: 5\n"), "raft: must be a mapping");
  RequireInvalid(Parse("limits: [1, 2]\n"), "limits: must be a mapping");
  RequireInvalid(Parse("members: [5]\n"), "members[0]: must be a mapping");
  RequireInvalid(Parse("members: {id: 1}\n"), "members: must be a list");
  RequireInvalid(Parse("? [a]\n: 1\n"), "non-text key");
  RequireInvalid(Parse("raft:\n  ? {x: 1}\n  : 2\n"), "raft: has a non-text key");
  RequireInvalid(Parse("- 1\n- 2\n"), "top level must be a mapping");
  RequireInvalid(Parse("node_id: [1]\n"), "node_id");
  RequireInvalid(Parse("raft: {tick_ms: [1]}\n"), "raft.tick_ms");
  RequireInvalid(Parse("node_id: 1\n  bad indent: 2\n"), "not valid YAML");
}

TEST_CASE("config: a key given twice is refused, not silently dropped", "[config]") {
  RequireInvalid(Parse("node_id: 1\nnode_id: 2\n"), "node_id: is given twice");
  RequireInvalid(Parse("raft: {tick_ms: 5, tick_ms: 6}\n"), "raft.tick_ms: is given twice");
  RequireInvalid(Parse("members:\n  - {id: 1, peer: a:1, client: a:2}\n"
                       "  - {id: 1, peer: a:3, client: a:4}\n"),
                 "members[1].id: duplicate member id");
}

TEST_CASE("config: node ids are positive decimal integers", "[config]") {
  RequireInvalid(Parse("node_id: -1\n"), "node_id: must be a positive integer");
  RequireInvalid(Parse("node_id: 0\n"), "node_id: must be a positive integer");
  RequireInvalid(Parse("node_id: 1x\n"), "node_id: must be a positive integer");
  RequireInvalid(Parse("members:\n  - {id: -1, peer: a:1, client: a:2}\n"),
                 "members[0].id: must be a positive integer");
  std::map<uint64_t, raftlock::server::MemberAddress> members;
  RequireInvalid(ParseMembersFlag("1x=a:1/a:2", &members), "'1x' is not a node id");
  RequireInvalid(ParseMembersFlag("-1=a:1/a:2", &members), "'-1' is not a node id");
  RequireInvalid(ParseMembersFlag("0=a:1/a:2", &members), "'0' is not a node id");
  RequireInvalid(ParseMembersFlag("1=a:1/a:2,1=a:3/a:4", &members),
                 "--members: node id 1 is given twice");
  CHECK(ParseMembersFlag("1=a:1/a:2,2=a:3/a:4", &members).ok());
  CHECK(members.size() == 2);
}

TEST_CASE("config: ports must be in 1..65535", "[config]") {
  for (const char* address :
       {"127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:99999", "127.0.0.1:000000000007001"}) {
    ServerConfig config = ValidConfig();
    config.members[2].peer = address;
    RequireInvalid(ValidateConfig(&config), "members[id=2].peer: '" + std::string(address) +
                                                "': the port must be in [1, 65535]");
  }
  ServerConfig listen = ValidConfig();
  listen.client_listen = "0.0.0.0:70000";
  RequireInvalid(ValidateConfig(&listen), "client_listen: '0.0.0.0:70000': the port must be");
  ServerConfig edge = ValidConfig();
  edge.members[2].client = "127.0.0.1:65535";
  CHECK(ValidateConfig(&edge).ok());
}

TEST_CASE("config: two listeners may not share an address", "[config]") {
  ServerConfig across = ValidConfig();
  across.members[2].client = "127.0.0.1:9001";
  RequireInvalid(ValidateConfig(&across),
                 "members[id=2].client: '127.0.0.1:9001' is also members[id=1].client");
  ServerConfig within = ValidConfig();
  within.members[1].client = "127.0.0.1:7001";
  RequireInvalid(ValidateConfig(&within),
                 "members[id=1].client: '127.0.0.1:7001' is also members[id=1].peer");
}

TEST_CASE("config: timing settings have bounds", "[config]") {
  ServerConfig heartbeat = ValidConfig();
  heartbeat.heartbeat_ticks = 0;
  RequireInvalid(ValidateConfig(&heartbeat), "raft.heartbeat_ticks: must be in [1, 10000]");
  ServerConfig election = ValidConfig();
  election.election_ticks = 2000000000;  // would overflow the randomized timeout
  RequireInvalid(ValidateConfig(&election), "raft.election_ticks: must be <= 100000");
  ServerConfig advance = ValidConfig();
  advance.time_advance_ms = 3600000;
  RequireInvalid(ValidateConfig(&advance), "raft.time_advance_ms: must be in [1, 60000]");
  ServerConfig level = ValidConfig();
  level.log_level = "verbose";
  RequireInvalid(ValidateConfig(&level), "critical, off");
  CHECK(ValidateConfig(&(level = ValidConfig())).ok());
}

TEST_CASE("config: an unreadable file is NotFound naming the path", "[config]") {
  ServerConfig config;
  absl::Status status = LoadConfigFile("/nonexistent/raftlock.yaml", &config);
  CHECK(status.code() == absl::StatusCode::kNotFound);
  CHECK_THAT(std::string(status.message()), Catch::Contains("/nonexistent/raftlock.yaml"));
}
