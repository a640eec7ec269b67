// Peer transport tests against an in-process gRPC server on 127.0.0.1 that
// plays the peer: snapshot transfers end when the transport shuts down, and
// finished transfers do not keep their threads.
#include "server/transport/transport.h"

#include <grpcpp/grpcpp.h>
#include <pthread.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "proto/transport.grpc.pb.h"

namespace raftlock::server {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

std::shared_ptr<spdlog::logger> NullLogger() {
  return std::make_shared<spdlog::logger>("transport-test",
                                          std::make_shared<spdlog::sinks::null_sink_mt>());
}

// Counts snapshot outcomes reported by the transport.
class RecordingHandler final : public TransportHandler {
 public:
  void OnMessages(std::vector<RaftMessage>) override {}
  void OnUnreachable(uint64_t) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++unreachable_reports_;
  }
  void OnSnapshotStatus(uint64_t, bool) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++snapshot_reports_;
    changed_.notify_all();
  }
  int unreachable_reports() {
    std::lock_guard<std::mutex> lock(mu_);
    return unreachable_reports_;
  }
  // Waits until `count` snapshot outcomes were reported; false on timeout.
  bool WaitForReports(int count, milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, timeout, [&] { return snapshot_reports_ >= count; });
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  int snapshot_reports_ = 0;
  int unreachable_reports_ = 0;
};

// Records the terms of the Raft messages delivered to this side.
class Inbox final : public TransportHandler {
 public:
  void OnMessages(std::vector<RaftMessage> messages) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& m : messages) terms_.push_back(m.term());
    changed_.notify_all();
  }
  void OnUnreachable(uint64_t) override {}
  void OnSnapshotStatus(uint64_t, bool) override {}
  size_t count() {
    std::lock_guard<std::mutex> lock(mu_);
    return terms_.size();
  }
  // Waits until a message of `term` arrived; false on timeout.
  bool WaitForTerm(uint64_t term, milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, timeout, [&] {
      return std::find(terms_.begin(), terms_.end(), term) != terms_.end();
    });
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<uint64_t> terms_;
};

// Sends node 2 one heartbeat (terms 1, 2, ...) and a tick every 25 ms, like
// a replica, until `done` or `max` heartbeats.
void SendHeartbeatsUntil(Transport& sender, uint64_t max, const std::function<bool()>& done) {
  for (uint64_t term = 1; term <= max && !done(); ++term) {
    RaftMessage m;
    m.set_type(v1::MSG_HEARTBEAT);
    m.set_from(1);
    m.set_to(2);
    m.set_term(term);
    sender.Send({m});
    sender.Tick();
    std::this_thread::sleep_for(milliseconds(25));
  }
}

// Takes 300 ms to handle its first report of an unreachable peer, as a
// busy owner might; records when it entered and left it.
class SlowUnreachableHandler final : public TransportHandler {
 public:
  void OnMessages(std::vector<RaftMessage>) override {}
  void OnUnreachable(uint64_t) override {
    if (entered_.exchange(true)) return;
    std::this_thread::sleep_for(milliseconds(300));
    left_ = true;
  }
  void OnSnapshotStatus(uint64_t, bool) override {}
  bool entered() const { return entered_; }
  bool left() const { return left_; }

 private:
  std::atomic<bool> entered_{false};
  std::atomic<bool> left_{false};
};

// A peer that reads the first chunk of each snapshot and then stops reading,
// like a peer whose disk or process has stalled; it ends the call only when
// the sender cancels it.
class StallingPeer final : public v1::RaftTransport::CallbackService {
 public:
  grpc::ServerReadReactor<v1::SnapshotChunk>* InstallSnapshot(grpc::CallbackServerContext*,
                                                              v1::SnapshotAck*) override {
    return new Reader(this);
  }

  bool WaitForFirstChunk(milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, timeout, [&] { return first_chunks_ > 0; });
  }

 private:
  class Reader final : public grpc::ServerReadReactor<v1::SnapshotChunk> {
   public:
    explicit Reader(StallingPeer* peer) : peer_(peer) { StartRead(&chunk_); }
    void OnReadDone(bool ok) override {
      if (!ok) {
        Finish(grpc::Status::OK);
        return;
      }
      std::lock_guard<std::mutex> lock(peer_->mu_);
      ++peer_->first_chunks_;
      peer_->changed_.notify_all();
      // No further StartRead: the sender's writes back up.
    }
    void OnCancel() override { Finish(grpc::Status::CANCELLED); }
    void OnDone() override { delete this; }

   private:
    StallingPeer* const peer_;
    v1::SnapshotChunk chunk_;
  };

  std::mutex mu_;
  std::condition_variable changed_;
  int first_chunks_ = 0;
};

RaftMessage SnapshotMessage(size_t bytes) {
  RaftMessage m;
  m.set_type(v1::MSG_SNAP);
  m.set_from(1);
  m.set_to(2);
  m.set_term(1);
  m.mutable_snapshot()->set_data(std::string(bytes, 'x'));
  m.mutable_snapshot()->mutable_metadata()->set_index(100);
  m.mutable_snapshot()->mutable_metadata()->set_term(1);
  return m;
}

TransportOptions OptionsFor(const std::string& peer_address) {
  TransportOptions options;
  options.cluster_id = "transport-test";
  options.self_id = 1;
  options.peers[2] = peer_address;
  options.snapshot_chunk_bytes = 256 << 10;
  options.snapshot_timeout = milliseconds(30000);
  return options;
}

// Node 2's side of the transport, serving on `listen` (the port bound goes to
// *port) with raftlockd's 64-MiB receive limit; messages go to `inbox`.
std::pair<std::unique_ptr<Transport>, std::unique_ptr<grpc::Server>> StartReceiver(
    const std::string& listen, Inbox* inbox, int* port,
    const std::string& cluster_id = "transport-test") {
  TransportOptions options;
  options.cluster_id = cluster_id;
  options.self_id = 2;
  options.peers[1] = "127.0.0.1:1";
  auto transport = std::make_unique<Transport>(options, inbox, NullLogger());
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), port);
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.RegisterService(transport->service());
  auto server = builder.BuildAndStart();
  REQUIRE(server != nullptr);
  return {std::move(transport), std::move(server)};
}

// How many mappings of /proc/self/maps are exactly one default thread stack
// in size. glibc keeps a thread's stack mapped until the thread is joined
// (and caches a few joined ones), so unjoined threads add one each. (VmSize
// would also count malloc arenas, which come and go with load.)
size_t ThreadStackMappings() {
  pthread_attr_t attr;
  size_t stack_size = 0;
  if (pthread_getattr_default_np(&attr) != 0) return 0;
  pthread_attr_getstacksize(&attr, &stack_size);
  pthread_attr_destroy(&attr);
  std::ifstream maps("/proc/self/maps");
  std::string line;
  size_t count = 0;
  while (std::getline(maps, line)) {
    unsigned long begin = 0;
    unsigned long end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &begin, &end) == 2 && end - begin == stack_size) {
      ++count;
    }
  }
  return count;
}

}  // namespace

TEST_CASE("Transport::Shutdown cancels a snapshot transfer to a peer that stopped reading",
          "[transport][snapshot]") {
  StallingPeer peer;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&peer);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  REQUIRE(port != 0);

  RecordingHandler handler;
  Transport transport(OptionsFor("127.0.0.1:" + std::to_string(port)), &handler, NullLogger());
  std::vector<RaftMessage> messages;
  messages.push_back(SnapshotMessage(size_t{64} << 20));  // far more than gRPC buffers
  transport.Send(std::move(messages));
  REQUIRE(peer.WaitForFirstChunk(milliseconds(10000)));

  // Without cancelling, Shutdown would wait for the transfer's 30-s deadline.
  const auto start = Clock::now();
  transport.Shutdown();
  CHECK(Clock::now() - start < milliseconds(5000));
  CHECK(handler.WaitForReports(1, milliseconds(0)));  // reported before Shutdown returned
  server->Shutdown(std::chrono::system_clock::now() + milliseconds(500));
}

// A stream to a peer that restarted looks open until a write fails: its
// connection died while it was idle. That first batch must reach the new
// process, not be lost (a lost vote request would cost a failover one more
// election timeout).
TEST_CASE("Transport delivers the first batch sent after the peer restarted", "[transport]") {
  auto heartbeat = [](uint64_t term) {
    RaftMessage m;
    m.set_type(v1::MSG_HEARTBEAT);
    m.set_from(1);
    m.set_to(2);
    m.set_term(term);
    return std::vector<RaftMessage>{m};
  };
  Inbox first_inbox;
  int port = 0;
  auto [first, first_server] = StartReceiver("127.0.0.1:0", &first_inbox, &port);
  REQUIRE(port != 0);
  const std::string address = "127.0.0.1:" + std::to_string(port);
  RecordingHandler handler;
  Transport sender(OptionsFor(address), &handler, NullLogger());
  sender.Send(heartbeat(1));
  REQUIRE(first_inbox.WaitForTerm(1, milliseconds(5000)));

  // The peer goes away and comes back on the same address.
  first_server->Shutdown(std::chrono::system_clock::now() + milliseconds(500));
  first->Shutdown();
  Inbox second_inbox;
  int second_port = 0;
  auto [second, second_server] = StartReceiver(address, &second_inbox, &second_port);
  REQUIRE(second_port == port);
  std::this_thread::sleep_for(milliseconds(200));

  sender.Send(heartbeat(2));
  const auto deadline = Clock::now() + milliseconds(3000);
  bool delivered = false;
  while (!delivered && Clock::now() < deadline) {
    sender.Tick();  // as the replica loop does every tick
    delivered = second_inbox.WaitForTerm(2, milliseconds(25));
  }
  CHECK(delivered);
  sender.Shutdown();
  second_server->Shutdown(std::chrono::system_clock::now() + milliseconds(500));
  second->Shutdown();
}

// A peer that accepts the connection but refuses every batch (another
// cluster) ends each stream PERMISSION_DENIED after its first write seemed
// to succeed. That is not a lost connection: the link backs off and reports
// the peer unreachable, rather than reconnecting at every tick.
TEST_CASE("Transport backs off from a peer that refuses its batches", "[transport]") {
  Inbox inbox;
  int port = 0;
  auto [receiver, server] = StartReceiver("127.0.0.1:0", &inbox, &port, "another-cluster");
  RecordingHandler handler;
  Transport sender(OptionsFor("127.0.0.1:" + std::to_string(port)), &handler, NullLogger());
  SendHeartbeatsUntil(sender, 60, [&] { return handler.unreachable_reports() > 0; });
  CHECK(handler.unreachable_reports() > 0);
  CHECK(inbox.count() == 0);
  sender.Shutdown();
  server->Shutdown(std::chrono::system_clock::now() + milliseconds(500));
  receiver->Shutdown();
}

// The owner may destroy the transport's handler once Shutdown returns, so a
// report of dropped messages that is still running must finish first. The
// report came after the stream was cleared, and Shutdown returned under it.
TEST_CASE("Transport::Shutdown waits for a dropped-messages report in progress", "[transport]") {
  Inbox inbox;
  int port = 0;
  auto [receiver, server] = StartReceiver("127.0.0.1:0", &inbox, &port, "another-cluster");
  SlowUnreachableHandler handler;
  Transport sender(OptionsFor("127.0.0.1:" + std::to_string(port)), &handler, NullLogger());
  SendHeartbeatsUntil(sender, 200, [&] { return handler.entered(); });
  REQUIRE(handler.entered());
  sender.Shutdown();
  CHECK(handler.left());
  server->Shutdown(std::chrono::system_clock::now() + milliseconds(500));
  receiver->Shutdown();
}

// One Ready can hand a peer many appends at once (up to 256 in flight of up
// to 1 MiB each). A batch is cut at message boundaries to max_batch_bytes;
// sent whole, it passed the receiver's 64-MiB limit, the stream failed, and
// the follower could never catch up.
TEST_CASE("Transport splits one large send into batches under the size limit", "[transport]") {
  Inbox inbox;
  int port = 0;
  auto [receiver, server] = StartReceiver("127.0.0.1:0", &inbox, &port);
  RecordingHandler handler;
  Transport sender(OptionsFor("127.0.0.1:" + std::to_string(port)), &handler, NullLogger());
  constexpr int kAppends = 80;
  std::vector<RaftMessage> appends;
  for (int i = 1; i <= kAppends; ++i) {
    RaftMessage m;
    m.set_type(v1::MSG_APP);
    m.set_from(1);
    m.set_to(2);
    m.set_term(static_cast<uint64_t>(i));
    m.add_entries()->set_data(std::string(size_t{1} << 20, 'x'));
    appends.push_back(std::move(m));
  }
  sender.Send(std::move(appends));
  const auto deadline = Clock::now() + milliseconds(30000);
  while (inbox.count() < kAppends && Clock::now() < deadline) {
    sender.Tick();
    inbox.WaitForTerm(kAppends, milliseconds(25));
  }
  CHECK(inbox.count() == kAppends);
  sender.Shutdown();
  server->Shutdown(std::chrono::system_clock::now() + milliseconds(500));
  receiver->Shutdown();
}

TEST_CASE("Transport joins the threads of finished snapshot transfers", "[transport][snapshot]") {
  // Nothing listens on port 1: each transfer fails at once.
  RecordingHandler handler;
  Transport transport(OptionsFor("127.0.0.1:1"), &handler, NullLogger());
  const size_t before = ThreadStackMappings();
  constexpr int kTransfers = 64;
  for (int i = 1; i <= kTransfers; ++i) {
    std::vector<RaftMessage> messages;
    messages.push_back(SnapshotMessage(16));
    transport.Send(std::move(messages));
    REQUIRE(handler.WaitForReports(i, milliseconds(10000)));
  }
  // Unjoined, the 64 finished threads would keep 64 stacks mapped.
  const size_t after = ThreadStackMappings();
  CHECK(after < before + 16);
  transport.Shutdown();
}

}  // namespace raftlock::server
