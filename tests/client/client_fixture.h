// Shared by the client tests: a started 3-node cluster on 127.0.0.1, SDK
// clients for it, raftlockctl runs, and JSON parsing of raftlockctl output.
#pragma once

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "raftlock/client.h"
#include "raftlock/session.h"
#include "tests/client/child_process.h"
#include "tests/integration/process_cluster.h"
#include "tests/integration/test_util.h"

#ifndef RAFTLOCKCTL_PATH
#error "RAFTLOCKCTL_PATH must name the raftlockctl binary"
#endif

namespace raftlock::testing {

// A raftlockd YAML configuration in a temporary file, removed on destruction;
// pass {"--config", path()} to TestCluster.
class ConfigFile {
 public:
  explicit ConfigFile(const std::string& yaml) {
    const int fd = mkstemps(path_, 5);
    REQUIRE(fd >= 0);
    const bool written = write(fd, yaml.data(), yaml.size()) == static_cast<ssize_t>(yaml.size());
    close(fd);
    if (!written) unlink(path_);  // the destructor does not run if this throws
    REQUIRE(written);
  }
  ~ConfigFile() { unlink(path_); }
  ConfigFile(const ConfigFile&) = delete;
  ConfigFile& operator=(const ConfigFile&) = delete;
  std::string path() const { return path_; }

 private:
  char path_[40] = "/tmp/raftlock-config-XXXXXX.yaml";
};

// A 3-node cluster, started and with an agreed leader. The ProcessCluster
// member SIGKILLs every node when this is destroyed (also when a REQUIRE
// throws), so no test leaves servers behind.
class TestCluster {
 public:
  // `extra_flags` go to every raftlockd (see ProcessCluster).
  explicit TestCluster(std::vector<std::string> extra_flags = {})
      : cluster(3, std::move(extra_flags)) {
    cluster.StartAll();
    leader = cluster.WaitForLeader(std::chrono::seconds(10));
    REQUIRE(leader != 0);
  }

  // "127.0.0.1:a,127.0.0.1:b,127.0.0.1:c"
  std::string Endpoints() const {
    std::string out;
    for (const auto& address : cluster.ClientAddresses()) out += (out.empty() ? "" : ",") + address;
    return out;
  }
  // A node that is not `leader` (the next id).
  int Follower() const { return leader % cluster.size() + 1; }

  // An SDK client; endpoints default to every node.
  std::shared_ptr<Client> NewClient(
      std::vector<std::string> endpoints = {},
      std::chrono::milliseconds attempt_timeout = std::chrono::milliseconds(1500)) const {
    ClientOptions options;
    options.endpoints = endpoints.empty() ? cluster.ClientAddresses() : std::move(endpoints);
    options.attempt_timeout = attempt_timeout;
    auto client = Client::Create(std::move(options));
    REQUIRE(client.ok());
    return *client;
  }

  std::unique_ptr<Session> NewSession(const std::shared_ptr<Client>& client,
                                      std::chrono::milliseconds ttl = std::chrono::seconds(10),
                                      std::function<void(SessionState)> on_change = nullptr) const {
    SessionOptions options;
    options.ttl = ttl;
    options.on_state_change = std::move(on_change);
    auto session = Session::Create(client, std::move(options), After(std::chrono::seconds(10)));
    INFO(session.status().ToString());
    REQUIRE(session.ok());
    return std::move(*session);
  }

  // raftlockctl --endpoints <this cluster> ARGS..., waited up to `timeout`.
  RunResult Ctl(std::vector<std::string> args,
                std::chrono::milliseconds timeout = std::chrono::seconds(20)) const {
    std::vector<std::string> argv = {RAFTLOCKCTL_PATH, "--endpoints", Endpoints()};
    argv.insert(argv.end(), args.begin(), args.end());
    return Run(std::move(argv), {}, timeout);
  }
  // raftlockctl in the background.
  std::unique_ptr<ChildProcess> CtlStart(std::vector<std::string> args) const {
    std::vector<std::string> argv = {RAFTLOCKCTL_PATH, "--endpoints", Endpoints()};
    argv.insert(argv.end(), args.begin(), args.end());
    return std::make_unique<ChildProcess>(std::move(argv));
  }

  ProcessCluster cluster;
  int leader = 0;
};

// Parses JSON (an object, array or scalar); REQUIREs that it parses.
inline google::protobuf::Value ParseJson(const std::string& text) {
  google::protobuf::Value value;
  auto status = google::protobuf::util::JsonStringToMessage(text, &value);
  INFO("JSON: " << text << " error: " << status.ToString());
  REQUIRE(status.ok());
  return value;
}

// Parses JSON printed from a proto message back into it (uint64s are strings,
// bytes base64, as proto3 JSON prints them).
template <typename Message>
Message ParseProtoJson(const std::string& text) {
  Message message;
  auto status = google::protobuf::util::JsonStringToMessage(text, &message);
  INFO("JSON: " << text << " error: " << status.ToString());
  REQUIRE(status.ok());
  return message;
}

// The field `key` of a JSON object; REQUIREs that it exists.
inline const google::protobuf::Value& Field(const google::protobuf::Value& object,
                                            const std::string& key) {
  REQUIRE(object.kind_case() == google::protobuf::Value::kStructValue);
  const auto& fields = object.struct_value().fields();
  auto it = fields.find(key);
  INFO("missing JSON field " << key);
  REQUIRE(it != fields.end());
  return it->second;
}

// A JSON number, or a decimal string (proto3 prints 64-bit integers as strings).
inline uint64_t Number(const google::protobuf::Value& value) {
  if (value.kind_case() == google::protobuf::Value::kStringValue) {
    return std::stoull(value.string_value());
  }
  REQUIRE(value.kind_case() == google::protobuf::Value::kNumberValue);
  return static_cast<uint64_t>(value.number_value());
}

}  // namespace raftlock::testing
