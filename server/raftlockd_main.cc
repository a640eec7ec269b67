// raftlockd: runs one raftlock replica.
//
//   raftlockd --config config/node1.yaml [overrides]
//
// Exit codes: 0 after a clean stop (SIGTERM/SIGINT), 2 for an invalid
// configuration, 1 when the data directory or a listen address is refused,
// 74 on a storage fail-stop.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "server/api/client_api.h"
#include "server/config.h"
#include "server/node/replica.h"
#include "storage/data_dir.h"

using raftlock::server::ServerConfig;

namespace {

constexpr int kExitBadConfig = 2;
constexpr int kExitRefused = 1;

std::shared_ptr<spdlog::logger> MakeLogger(uint64_t node_id, const std::string& level) {
  auto logger = spdlog::stderr_color_mt("n" + std::to_string(node_id));
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ node=" + std::to_string(node_id) + " %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  return logger;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian builds Abseil without NDEBUG, which turns on absl::Mutex deadlock
  // detection (a lock-graph update on every gRPC mutex operation).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  CLI::App app{"raftlockd: one replica of a raftlock cluster (locks, leases, elections)"};
  std::string config_path;
  std::string members_flag;
  ServerConfig overrides_marker;
  std::optional<uint64_t> node_id;
  std::optional<std::string> cluster_id, data_dir, peer_listen, client_listen, peer_advertise,
      client_advertise, log_level;
  std::optional<int> tick_ms, heartbeat_ticks, election_ticks, client_ping_ms;
  std::optional<uint64_t> snapshot_interval, snapshot_catchup_entries;
  app.add_option("-c,--config", config_path, "YAML configuration file");
  app.add_option("--node-id", node_id, "this replica's id (> 0)");
  app.add_option("--cluster-id", cluster_id, "cluster identity recorded in the data directory");
  app.add_option("--data-dir", data_dir, "data directory");
  app.add_option("--peer-listen", peer_listen, "replica-to-replica listen address host:port");
  app.add_option("--client-listen", client_listen, "client API listen address host:port");
  app.add_option("--peer-advertise", peer_advertise, "peer address other replicas use");
  app.add_option("--client-advertise", client_advertise, "client address clients are sent to");
  app.add_option("--members", members_flag,
                 "initial cluster: id=peer/client,... e.g. 1=127.0.0.1:7001/127.0.0.1:9001");
  app.add_option("--tick-ms", tick_ms, "length of one Raft tick in milliseconds");
  app.add_option("--heartbeat-ticks", heartbeat_ticks, "ticks between leader heartbeats");
  app.add_option("--election-ticks", election_ticks,
                 "minimum election timeout in ticks (randomized up to twice this)");
  app.add_option("--snapshot-interval", snapshot_interval,
                 "applied entries between state-machine snapshots");
  app.add_option("--snapshot-catchup-entries", snapshot_catchup_entries,
                 "log entries kept behind a snapshot for lagging followers");
  app.add_option("--client-ping-ms", client_ping_ms,
                 "ping clients this often; close a connection whose ping is unanswered as long");
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error");
  app.footer(std::string("Timing defaults: ") + raftlock::server::DefaultTimingReason());
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : kExitBadConfig;
  }

  ServerConfig config;
  if (!config_path.empty()) {
    absl::Status status = raftlock::server::LoadConfigFile(config_path, &config);
    if (!status.ok()) {
      std::cerr << "raftlockd: invalid configuration: " << status.message() << "\n";
      return kExitBadConfig;
    }
  }
  if (node_id) config.node_id = *node_id;
  if (cluster_id) config.cluster_id = *cluster_id;
  if (data_dir) config.data_dir = *data_dir;
  if (peer_listen) config.peer_listen = *peer_listen;
  if (client_listen) config.client_listen = *client_listen;
  if (peer_advertise) config.peer_advertise = *peer_advertise;
  if (client_advertise) config.client_advertise = *client_advertise;
  if (tick_ms) config.tick_ms = *tick_ms;
  if (heartbeat_ticks) config.heartbeat_ticks = *heartbeat_ticks;
  if (election_ticks) config.election_ticks = *election_ticks;
  if (snapshot_interval) config.snapshot_interval = *snapshot_interval;
  if (snapshot_catchup_entries) config.snapshot_catchup_entries = *snapshot_catchup_entries;
  if (client_ping_ms) config.client_ping_ms = *client_ping_ms;
  if (log_level) config.log_level = *log_level;
  if (!members_flag.empty()) {
    absl::Status status = raftlock::server::ParseMembersFlag(members_flag, &config.members);
    if (!status.ok()) {
      std::cerr << "raftlockd: invalid configuration: " << status.message() << "\n";
      return kExitBadConfig;
    }
  }
  if (absl::Status status = raftlock::server::ValidateConfig(&config); !status.ok()) {
    std::cerr << "raftlockd: invalid configuration: " << status.message() << "\n";
    return kExitBadConfig;
  }

  auto logger = MakeLogger(config.node_id, config.log_level);

  // Block the stop signals in every thread; the main thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto data = raftlock::storage::OpenDataDir(config.data_dir, config.cluster_id, config.node_id);
  if (!data.ok()) {
    logger->critical("refusing to start: {}", std::string(data.status().message()));
    return kExitRefused;
  }
  auto replica = std::make_unique<raftlock::server::Replica>(
      raftlock::server::ToReplicaOptions(config), (*data)->ReleaseLogStore(), logger);
  raftlock::server::ClientApi api(replica.get(), logger);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  // Every return below shuts the servers down with a deadline first: gRPC's
  // destructor would wait without limit for the peers' streams, which stay
  // open, so a node refusing to start would never exit.
  std::unique_ptr<grpc::Server> peer_server;
  std::unique_ptr<grpc::Server> client_server;
  auto shut_down_servers = [&] {
    auto deadline = std::chrono::system_clock::now() + std::chrono::milliseconds(500);
    if (client_server) client_server->Shutdown(deadline);
    if (peer_server) peer_server->Shutdown(deadline);
  };

  grpc::ServerBuilder peer_builder;
  int peer_port = 0;
  peer_builder.AddListeningPort(config.peer_listen, grpc::InsecureServerCredentials(), &peer_port);
  peer_builder.SetMaxReceiveMessageSize(64 << 20);
  // A second process on the same port must fail to start, not share it.
  peer_builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Peers ping every 2 s (server/transport) to notice a dead link; accept that
  // rate even without calls, or gRPC's default (one ping per 5 min without
  // data) answers GOAWAY "too_many_pings" and drops the Raft stream.
  peer_builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 1000);
  peer_builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  peer_builder.RegisterService(replica->transport().service());
  peer_server = peer_builder.BuildAndStart();
  if (!peer_server || peer_port == 0) {
    logger->critical("cannot listen for peers on {}", config.peer_listen);
    shut_down_servers();
    return kExitRefused;
  }

  grpc::ServerBuilder client_builder;
  int client_port = 0;
  client_builder.AddListeningPort(config.client_listen, grpc::InsecureServerCredentials(),
                                  &client_port);
  client_builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // The SDKs ping a connection with calls in flight every 2 s (at least 1 s,
  // raftlock::kMinPingInterval) to notice a dead replica. Accept twice that
  // rate, also on a connection whose last call just ended, or gRPC counts
  // strikes and answers GOAWAY "too_many_pings".
  client_builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 500);
  client_builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // A client that vanishes without closing its connection (a crashed host, a
  // partition) is noticed by unanswered pings: the connection closes, which
  // cancels its calls, so their waits are withdrawn and Observe streams end.
  client_builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, config.client_ping_ms);
  client_builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, config.client_ping_ms);
  client_builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  api.Register(client_builder);
  client_server = client_builder.BuildAndStart();
  if (!client_server || client_port == 0) {
    logger->critical("cannot listen for clients on {}", config.client_listen);
    shut_down_servers();
    return kExitRefused;
  }
  // gRPC's health service starts out SERVING; not until the replica runs.
  client_server->GetHealthCheckService()->SetServingStatus(false);

  if (absl::Status status = replica->Start(); !status.ok()) {
    logger->critical("refusing to start: {}", std::string(status.message()));
    api.Shutdown();
    shut_down_servers();
    return kExitRefused;
  }
  logger->info("serving cluster '{}': peers on {}, clients on {}, {} members", config.cluster_id,
               config.peer_listen, config.client_listen, config.members.size());
  client_server->GetHealthCheckService()->SetServingStatus(true);

  int signal = 0;
  sigwait(&stop_signals, &signal);
  logger->info(
      "received {}; stopping (a leader hands over leadership first; "
      "a second signal exits at once)",
      signal == SIGTERM ? "SIGTERM" : "SIGINT");
  // The graceful stop can take seconds. A second signal ends the process at
  // once: like a crash, it loses nothing acknowledged (that is durable).
  std::thread([stop_signals, logger] {
    int again = 0;
    sigwait(&stop_signals, &again);
    logger->warn("received {} again; exiting now, without the graceful stop",
                 again == SIGTERM ? "SIGTERM" : "SIGINT");
    logger->flush();
    std::_Exit(128 + again);
  }).detach();
  client_server->GetHealthCheckService()->SetServingStatus(false);
  replica->Stop(/*transfer_leadership=*/true);
  api.Shutdown();
  shut_down_servers();
  replica.reset();
  logger->info("stopped");
  return 0;
}
