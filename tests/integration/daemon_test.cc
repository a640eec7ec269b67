// Integration: raftlockd as a program -- configuration errors, data-directory
// identity, refusal of foreign peers, graceful SIGTERM.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "proto/transport.grpc.pb.h"
#include "storage/data_dir.h"
#include "storage/fail_stop.h"
#include "tests/integration/leader_client.h"
#include "tests/integration/process_cluster.h"
#include "tests/integration/test_util.h"

using namespace raftlock::testing;

namespace {

struct RunResult {
  int exit_code = -1;
  std::string output;
};

// Runs raftlockd with `args` to completion (it must exit by itself).
RunResult RunDaemon(const std::string& args) {
  std::string command = std::string(RAFTLOCKD_PATH) + " " + args + " 2>&1";
  RunResult result;
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  while (fgets(buffer, sizeof(buffer), pipe) != nullptr) result.output += buffer;
  int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// CRC-32 (zlib's polynomial), as the peer transport checks snapshot data.
uint32_t Crc32(const std::string& data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char byte : data) {
    crc ^= byte;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

// Sends node 1 of `cluster` one whole-snapshot chunk as node 2 would, with
// `data`, claiming `total_size` bytes; the MSG_SNAP header says it comes
// from `header_from` at term 1000 and covers index 1000000. Returns the
// call's status.
grpc::Status SendSnapshotChunk(const ProcessCluster& cluster, uint64_t header_from,
                               const std::string& data, uint64_t total_size) {
  auto stub = raftlock::v1::RaftTransport::NewStub(
      grpc::CreateChannel(cluster.PeerAddress(1), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 3s);
  raftlock::v1::SnapshotAck ack;
  auto writer = stub->InstallSnapshot(&context, &ack);
  raftlock::v1::SnapshotChunk chunk;
  chunk.set_cluster_id("it");
  chunk.set_from(2);
  chunk.set_to(1);
  chunk.set_total_size(total_size);
  chunk.set_crc32(Crc32(data));
  chunk.set_data(data);
  auto* header = chunk.mutable_header();
  header->set_type(raftlock::v1::MSG_SNAP);
  header->set_from(header_from);
  header->set_to(1);
  header->set_term(1000);  // would depose the leader if accepted
  auto* metadata = header->mutable_snapshot()->mutable_metadata();
  metadata->set_index(1000000);
  metadata->set_term(1000);
  for (uint64_t id : {1, 2, 3}) metadata->mutable_conf_state()->add_voters(id);
  writer->Write(chunk);
  writer->WritesDone();
  return writer->Finish();
}

std::string TempDir() {
  char tmpl[] = "/tmp/raftlock-daemon-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  return tmpl;
}

}  // namespace

TEST_CASE("raftlockd: an invalid config file exits 2 naming the key", "[daemon][config]") {
  std::string dir = TempDir();
  auto write = [&](const std::string& text) {
    std::ofstream(dir + "/bad.yaml") << text;
    return RunDaemon("--config " + dir + "/bad.yaml");
  };
  RunResult unknown = write("node_id: 1\nraft:\n  tick_millis: 5\n");
  CHECK(unknown.exit_code == 2);
  CHECK_THAT(unknown.output, Catch::Contains("raft.tick_millis: unknown key"));

  // A section of the wrong shape made yaml-cpp throw out of main (exit 134).
  RunResult wrong_shape = write("node_id: 1\nraft: 5\n");
  CHECK(wrong_shape.exit_code == 2);
  CHECK_THAT(wrong_shape.output, Catch::Contains("raft: must be a mapping"));

  RunResult wrong_type = write("node_id: one\n");
  CHECK(wrong_type.exit_code == 2);
  CHECK_THAT(wrong_type.output, Catch::Contains("node_id"));

  RunResult timing = write("node_id: 1\ndata_dir: " + dir +
                           "/d\nmembers:\n  - {id: 1, peer: 127.0.0.1:1, client: "
                           "127.0.0.1:2}\nraft: {heartbeat_ticks: 5, election_ticks: 5}\n");
  CHECK(timing.exit_code == 2);
  CHECK_THAT(timing.output, Catch::Contains("raft.election_ticks"));

  RunResult not_member = write("node_id: 4\ndata_dir: " + dir +
                               "/d\nmembers:\n  - {id: 1, peer: 127.0.0.1:1, client: "
                               "127.0.0.1:2}\n");
  CHECK(not_member.exit_code == 2);
  CHECK_THAT(not_member.output, Catch::Contains("members"));

  // Each limit has a range; 0 clients would leave the exactly-once table over
  // its bound, and every snapshot would then be refused.
  RunResult no_dedup = write("node_id: 1\ndata_dir: " + dir +
                             "/d\nmembers:\n  - {id: 1, peer: 127.0.0.1:1, client: "
                             "127.0.0.1:2}\nlimits: {max_dedup_clients: 0}\n");
  CHECK(no_dedup.exit_code == 2);
  CHECK_THAT(no_dedup.output, Catch::Contains("limits.max_dedup_clients: must be in [1, "));
  RunResult no_ping = RunDaemon("--node-id 1 --data-dir " + dir +
                                "/d --members 1=127.0.0.1:1/127.0.0.1:2 --client-ping-ms 100");
  CHECK(no_ping.exit_code == 2);
  CHECK_THAT(no_ping.output, Catch::Contains("client_ping_ms: must be in [500, 3600000]"));

  RunResult bad_address =
      RunDaemon("--node-id 1 --data-dir " + dir + "/d --members 1=localhost/127.0.0.1:5");
  CHECK(bad_address.exit_code == 2);
  CHECK_THAT(bad_address.output, Catch::Contains("peer"));

  RunResult bad_port =
      RunDaemon("--node-id 1 --data-dir " + dir + "/d --members 1=127.0.0.1:99999/127.0.0.1:5");
  CHECK(bad_port.exit_code == 2);
  CHECK_THAT(bad_port.output, Catch::Contains("the port must be in [1, 65535]"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("raftlockd: a data directory of another cluster or node is refused",
          "[daemon][identity]") {
  ProcessCluster cluster(1);
  cluster.StartAll();
  REQUIRE(cluster.WaitForLeader(10s) == 1);
  REQUIRE(cluster.Terminate(1) == 0);
  std::string data = cluster.DataDir(1);
  RunResult other_cluster = RunDaemon("--cluster-id someone-else --node-id 1 --data-dir " + data +
                                      " --members 1=127.0.0.1:1/127.0.0.1:2");
  CHECK(other_cluster.exit_code != 0);
  CHECK_THAT(other_cluster.output, Catch::Contains("someone-else"));
  RunResult other_node = RunDaemon("--cluster-id it --node-id 2 --data-dir " + data +
                                   " --members 2=127.0.0.1:1/127.0.0.1:2");
  CHECK(other_node.exit_code != 0);
  CHECK_THAT(other_node.output, Catch::Contains("node"));
}

TEST_CASE("raftlockd: peer messages from another cluster or an unknown node are refused",
          "[daemon][transport]") {
  ProcessCluster cluster(3);
  cluster.StartAll();
  REQUIRE(cluster.WaitForLeader(10s) != 0);
  auto stub = raftlock::v1::RaftTransport::NewStub(
      grpc::CreateChannel(cluster.PeerAddress(1), grpc::InsecureChannelCredentials()));
  auto send = [&](const std::string& cluster_id, uint64_t from) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 3s);
    raftlock::v1::RaftStreamSummary summary;
    auto writer = stub->Stream(&context, &summary);
    raftlock::v1::RaftBatch batch;
    batch.set_cluster_id(cluster_id);
    batch.set_from(from);
    batch.set_to(1);
    auto* message = batch.add_messages();
    message->set_type(raftlock::v1::MSG_HEARTBEAT);
    message->set_from(from);
    message->set_to(1);
    message->set_term(1000);  // would depose the leader if accepted
    writer->Write(batch);
    writer->WritesDone();
    return writer->Finish();
  };
  grpc::Status foreign = send("another-cluster", 2);
  CHECK(foreign.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK_THAT(foreign.error_message(), Catch::Contains("another-cluster"));
  grpc::Status unknown = send("it", 9);
  CHECK(unknown.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK_THAT(unknown.error_message(), Catch::Contains("9"));
  auto status = cluster.Status(1);
  REQUIRE(status);
  CHECK(status->term() < 1000);
}

TEST_CASE("raftlockd: snapshot chunks with a forged header or an absurd size are refused",
          "[daemon][transport][snapshot]") {
  ProcessCluster cluster(3);
  cluster.StartAll();
  REQUIRE(cluster.WaitForLeader(10s) != 0);
  // Node 2 sends a snapshot whose header claims node 9 sent it.
  grpc::Status forged = SendSnapshotChunk(cluster, /*header_from=*/9, "", 0);
  CHECK(forged.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(forged.error_message(), Catch::Contains("does not match the chunk's sender 2"));
  grpc::Status absurd = SendSnapshotChunk(cluster, /*header_from=*/2, "", UINT64_MAX);
  CHECK(absurd.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(absurd.error_message(), Catch::Contains("total_size"));
  auto status = cluster.Status(1);
  REQUIRE(status);
  CHECK(status->term() < 1000);
}

TEST_CASE("raftlockd: SIGTERM on the leader hands leadership over and exits 0",
          "[daemon][shutdown]") {
  ProcessCluster cluster(3);
  cluster.StartAll();
  int leader = cluster.WaitForLeader(10s);
  REQUIRE(leader != 0);
  auto start = Clock::now();
  CHECK(cluster.Terminate(leader) == 0);
  int next = cluster.WaitForLeader(5s);
  double took = MillisSince(start);
  REQUIRE(next != 0);
  CHECK(next != leader);
  INFO(cluster.LogTail(leader));
  std::ifstream in(cluster.LogPath(leader));
  std::stringstream text;
  text << in.rdbuf();
  CHECK_THAT(text.str(), Catch::Contains("transferring leadership"));
  // A planned handover needs no election timeout.
  CHECK(took < 3000);
  LeaderClient client(cluster.ClientAddresses());
  uint64_t lease = 0;
  CHECK(client.GrantLease(5000, &lease, 5s).ok());
}

// A graceful stop can take seconds (a leader waits up to 2 s to hand over).
// An operator's second Ctrl-C or SIGTERM must end the process at once; it
// loses nothing acknowledged, which is already durable.
TEST_CASE("raftlockd: a second SIGTERM during a graceful stop exits at once",
          "[daemon][shutdown]") {
  // A 2-s election timeout: with its followers paused the leader neither
  // completes the handover nor steps down (check quorum) for about 2 s.
  ProcessCluster cluster(3, {"--election-ticks", "80"});
  cluster.StartAll();
  const int leader = cluster.WaitForLeader(20s);
  REQUIRE(leader != 0);
  for (int id = 1; id <= 3; ++id) {
    if (id != leader) cluster.Pause(id);  // the handover can only time out
  }
  cluster.Signal(leader, SIGTERM);
  std::this_thread::sleep_for(300ms);
  const auto second = Clock::now();
  cluster.Signal(leader, SIGTERM);
  const int code = cluster.WaitExit(leader, 1500ms);
  INFO(cluster.LogTail(leader));
  CHECK(code == 128 + SIGTERM);
  CHECK(MillisSince(second) < 1000);
  for (int id = 1; id <= 3; ++id) {
    if (id != leader) cluster.Resume(id);
  }
}

TEST_CASE("raftlockd: idle peer connections are not closed for pinging too often",
          "[daemon][transport]") {
  // Peers send HTTP/2 keepalive pings every 2 s to notice a dead link; a peer
  // server left at gRPC's default (one ping per 5 minutes without data) answers
  // the third with GOAWAY "too_many_pings" and drops the connection and its
  // stream of Raft messages, seen about 10 s into an idle cluster.
  ProcessCluster cluster(3);
  cluster.StartAll();
  REQUIRE(cluster.WaitForLeader(std::chrono::seconds(10)) != 0);
  std::this_thread::sleep_for(std::chrono::seconds(14));
  for (int id = 1; id <= 3; ++id) {
    std::ifstream log(cluster.LogPath(id));
    std::stringstream text;
    text << log.rdbuf();
    INFO("node " << id << " log:\n" << cluster.LogTail(id, 10));
    CHECK_THAT(text.str(), !Catch::Contains("too_many_pings"));
  }
}

TEST_CASE("raftlockd: a node that refuses to start exits while its peers hold streams to it",
          "[daemon][startup]") {
  ProcessCluster cluster(3);
  cluster.StartAll();
  REQUIRE(cluster.WaitForLeader(10s) != 0);
  REQUIRE(cluster.Terminate(3) == 0);
  {
    // A snapshot the state machine cannot read (its checksum is right), large
    // enough that loading it keeps Start() busy while nodes 1 and 2, which
    // redial every 250 ms or sooner, open their Raft streams to node 3.
    auto data = raftlock::storage::OpenDataDir(cluster.DataDir(3), "it", 3);
    REQUIRE(data.ok());
    auto log = (*data)->ReleaseLogStore();
    raftlock::raft::PersistRequest request;
    request.snapshot.emplace();
    request.snapshot->set_data(std::string(size_t{256} << 20, '\xff'));
    auto* metadata = request.snapshot->mutable_metadata();
    metadata->set_index(log->LastIndex() + 1000);
    metadata->set_term(1000);
    for (uint64_t id : {1, 2, 3}) metadata->mutable_conf_state()->add_voters(id);
    REQUIRE(log->Persist(request).ok());
  }
  cluster.Start(3);
  // Hold a stream open too, as a peer would, as soon as the port accepts one.
  auto stub = raftlock::v1::RaftTransport::NewStub(
      grpc::CreateChannel(cluster.PeerAddress(3), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_wait_for_ready(true);
  context.set_deadline(std::chrono::system_clock::now() + 30s);
  raftlock::v1::RaftStreamSummary summary;
  auto writer = stub->Stream(&context, &summary);
  raftlock::v1::RaftBatch empty;
  empty.set_cluster_id("it");
  empty.set_from(1);
  empty.set_to(3);
  writer->Write(empty);

  const int exit_code = cluster.WaitExit(3, 20s);
  CHECK(exit_code == 1);  // kExitRefused; -1: still running after 20 s, then killed
  CHECK_THAT(cluster.LogTail(3), Catch::Contains("cannot restore the state machine"));
  context.TryCancel();
}

TEST_CASE("raftlockd: a snapshot it cannot read stops the node before it replaces the log",
          "[daemon][snapshot]") {
  ProcessCluster cluster(3);
  cluster.StartAll();
  REQUIRE(cluster.WaitForLeader(10s) != 0);
  // Node 2, as leader of a later term, sends node 1 a snapshot whose data this
  // build cannot read (a newer format, or a bug), with a correct checksum.
  const std::string data = "not a lock snapshot";
  // OK, or UNAVAILABLE when node 1 stops before its answer leaves.
  grpc::Status sent = SendSnapshotChunk(cluster, /*header_from=*/2, data, data.size());
  CHECK((sent.ok() || sent.error_code() == grpc::StatusCode::UNAVAILABLE));

  CHECK(cluster.WaitExit(1, 10s) == raftlock::storage::kFailStopExitCode);
  CHECK_THAT(cluster.LogTail(1), Catch::Contains("installing the snapshot at index 1000000"));
  // Its log was not replaced: it starts again and rejoins the cluster.
  cluster.Start(1);
  REQUIRE(cluster.WaitForLeader(10s) != 0);
  auto status = cluster.Status(1);
  REQUIRE(status);
  CHECK(status->term() < 1000);
  CHECK(status->snapshot_index() < 1000000);
}
