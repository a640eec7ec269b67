// Integration: raftlockd as a program -- configuration errors, data-directory
// identity, refusal of foreign peers, graceful SIGTERM.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "proto/transport.grpc.pb.h"
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

  RunResult bad_address =
      RunDaemon("--node-id 1 --data-dir " + dir + "/d --members 1=localhost/127.0.0.1:5");
  CHECK(bad_address.exit_code == 2);
  CHECK_THAT(bad_address.output, Catch::Contains("peer"));
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
