// raftlockd configuration: a YAML file with command-line overrides.
//
// Example (config/node1.yaml):
//   cluster_id: local
//   node_id: 1
//   data_dir: /var/lib/raftlock/n1
//   peer_listen: 127.0.0.1:7001      # replica-to-replica
//   client_listen: 127.0.0.1:9001    # client API
//   peer_advertise / client_advertise default to the listen addresses
//   members:                         # the initial cluster, this node included
//     - {id: 1, peer: 127.0.0.1:7001, client: 127.0.0.1:9001}
//   raft: {tick_ms: 25, heartbeat_ticks: 2, election_ticks: 8,
//          snapshot_interval: 10000, snapshot_catchup_entries: 1000}
//   limits: {min_ttl_ms: ..., max_ttl_ms: ..., ...}   # lock/limits.h
//   client_ping_ms: 10000
//   log_level: info
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "server/lock/limits.h"
#include "server/node/replica.h"

namespace raftlock::server {

struct ServerConfig {
  std::string cluster_id = "raftlock";
  uint64_t node_id = 0;
  std::string data_dir;
  std::string peer_listen;
  std::string client_listen;
  std::string peer_advertise;    // "" = peer_listen
  std::string client_advertise;  // "" = client_listen
  std::map<uint64_t, MemberAddress> members;
  // Defaults: see DefaultTimingReason() for why.
  int tick_ms = 25;
  int heartbeat_ticks = 2;
  int election_ticks = 8;
  uint64_t snapshot_interval = 10000;
  uint64_t snapshot_catchup_entries = 1000;
  int time_advance_ms = 100;
  // raftlockd pings every client connection this often and closes one whose
  // ping is unanswered as long (a vanished client's waits are withdrawn and
  // its Observe streams end).
  int client_ping_ms = 10000;
  lock::Limits limits;
  std::string log_level = "info";
};

// Why the timing defaults are what they are (printed by --help).
const char* DefaultTimingReason();

// Parses YAML text into `config` (keys absent keep their current values).
// Errors name the offending key, e.g. "raft.election_ticks: must be > heartbeat_ticks".
absl::Status ParseConfigYaml(const std::string& yaml_text, ServerConfig* config);

// Reads and parses a YAML file.
absl::Status LoadConfigFile(const std::string& path, ServerConfig* config);

// Parses "1=127.0.0.1:7001/127.0.0.1:9001,2=..." (id=peer/client, comma
// separated) into members.
absl::Status ParseMembersFlag(const std::string& text, std::map<uint64_t, MemberAddress>* members);

// Checks the whole configuration after overrides; errors name the key.
absl::Status ValidateConfig(ServerConfig* config);

// The replica options this configuration describes.
ReplicaOptions ToReplicaOptions(const ServerConfig& config);

}  // namespace raftlock::server
