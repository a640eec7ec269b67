// Replica driver tests with the peers played by the test: the replica runs its
// real loop and syncer over a MemoryStorage, and its Raft messages go to a
// capturing PeerSender instead of gRPC, so a test can order what the loop
// sees.
#include "server/node/replica.h"

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "raft/memory_storage.h"

namespace raftlock::server {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Records every message the replica sends.
class CapturingSender final : public PeerSender {
 public:
  void Send(std::vector<RaftMessage> messages) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& m : messages) {
      sent_.push_back(std::move(m));
      sent_at_.push_back(Clock::now());
    }
    arrived_.notify_all();
  }
  void Tick() override {}
  void Shutdown() override {}

  // The first message after the first `from` sent ones that matches `match`,
  // waiting at most `timeout`; sets *next to the position after it.
  std::optional<RaftMessage> WaitFor(size_t from,
                                     const std::function<bool(const RaftMessage&)>& match,
                                     milliseconds timeout, size_t* next) {
    std::unique_lock<std::mutex> lock(mu_);
    const auto deadline = Clock::now() + timeout;
    size_t i = from;
    while (true) {
      for (; i < sent_.size(); ++i) {
        if (match(sent_[i])) {
          *next = i + 1;
          return sent_[i];
        }
      }
      if (arrived_.wait_until(lock, deadline) == std::cv_status::timeout && i == sent_.size()) {
        return std::nullopt;
      }
    }
  }

  // The longest time between two messages to `peer` sent after position
  // `from`, and between the last of them and now.
  Clock::duration LongestSilenceTo(uint64_t peer, size_t from) {
    std::lock_guard<std::mutex> lock(mu_);
    Clock::duration longest{};
    std::optional<Clock::time_point> last;
    for (size_t i = from; i < sent_.size(); ++i) {
      if (sent_[i].to() != peer) continue;
      if (last) longest = std::max(longest, sent_at_[i] - *last);
      last = sent_at_[i];
    }
    if (last) longest = std::max(longest, Clock::now() - *last);
    return longest;
  }

 private:
  std::mutex mu_;
  std::condition_variable arrived_;
  std::vector<RaftMessage> sent_;
  std::vector<Clock::time_point> sent_at_;  // when each of sent_ was sent
};

RaftMessage Reply(const RaftMessage& to, v1::MessageType type, uint64_t term) {
  RaftMessage m;
  m.set_type(type);
  m.set_from(to.to());
  m.set_to(to.from());
  m.set_term(term);
  return m;
}

// Node 1 of three whose peers are played by the test (*peers, set at Start).
// Election timeout 500-1000 ms: long enough that a candidate does not start
// over while a test holds the loop between its vote request and the reply.
ReplicaOptions TestOptions(CapturingSender** peers) {
  ReplicaOptions options;
  options.cluster_id = "replica-test";
  options.node_id = 1;
  for (uint64_t id : {1, 2, 3}) {
    options.members[id] = MemberAddress{"127.0.0.1:1", "127.0.0.1:1"};  // never dialled
  }
  options.tick = milliseconds(10);
  options.election_ticks = 50;
  options.random_seed = 7;
  options.testing_peer_sender = [peers](TransportHandler*) {
    auto sender = std::make_unique<CapturingSender>();
    *peers = sender.get();
    return sender;
  };
  return options;
}

std::shared_ptr<spdlog::logger> NullLogger() {
  return std::make_shared<spdlog::logger>("replica-test",
                                          std::make_shared<spdlog::sinks::null_sink_mt>());
}

}  // namespace

TEST_CASE(
    "semantics 1: a proposal stamped in the loop pass that made the replica leader carries the "
    "applied cluster time, not the machine's uptime",
    "[replica][cluster-time]") {
  CapturingSender* peers = nullptr;
  // Declared before the replica, which answers it (also when it stops early).
  std::promise<absl::StatusOr<lock::ApplyResult>> applied;
  Replica replica(TestOptions(&peers), std::make_unique<raft::MemoryStorage>(), NullLogger());
  const auto started = Clock::now();
  REQUIRE(replica.Start().ok());
  REQUIRE(peers != nullptr);

  // Node 2 grants the pre-vote; the replica then asks for real votes.
  size_t next = 0;
  auto pre_vote = peers->WaitFor(
      0, [](const RaftMessage& m) { return m.type() == v1::MSG_PRE_VOTE && m.to() == 2; },
      milliseconds(5000), &next);
  REQUIRE(pre_vote.has_value());
  replica.OnMessages({Reply(*pre_vote, v1::MSG_PRE_VOTE_RESP, pre_vote->term())});
  auto vote = peers->WaitFor(
      next, [](const RaftMessage& m) { return m.type() == v1::MSG_VOTE && m.to() == 2; },
      milliseconds(5000), &next);
  REQUIRE(vote.has_value());
  const uint64_t term = vote->term();

  // Hold the loop, then queue the winning vote and a proposal behind it: the
  // loop steps the vote (becoming leader) and stamps the proposal in the same
  // pass, before the Ready that reports the new role is handled.
  std::promise<void> loop_held;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  replica.RunOnLoop([&loop_held, released] {
    loop_held.set_value();
    released.wait();
  });
  loop_held.get_future().wait();
  replica.OnMessages({Reply(*vote, v1::MSG_VOTE_RESP, term)});
  v1::Command command;
  command.mutable_time_advance();
  replica.Propose(std::move(command), [&applied](absl::StatusOr<lock::ApplyResult> result) {
    applied.set_value(std::move(result));
  });
  release.set_value();

  // Node 2 acknowledges every append and heartbeat until the proposal is
  // applied (node 3 stays silent).
  auto applied_future = applied.get_future();
  const auto deadline = Clock::now() + milliseconds(5000);
  while (applied_future.wait_for(milliseconds(0)) != std::future_status::ready &&
         Clock::now() < deadline) {
    auto to_node2 = peers->WaitFor(
        next,
        [](const RaftMessage& m) {
          return m.to() == 2 && (m.type() == v1::MSG_APP || m.type() == v1::MSG_HEARTBEAT);
        },
        milliseconds(200), &next);
    if (!to_node2) continue;
    if (to_node2->type() == v1::MSG_HEARTBEAT) {
      RaftMessage ack = Reply(*to_node2, v1::MSG_HEARTBEAT_RESP, term);
      ack.set_context(to_node2->context());
      replica.OnMessages({ack});
      continue;
    }
    RaftMessage ack = Reply(*to_node2, v1::MSG_APP_RESP, term);
    ack.set_index(to_node2->index() + static_cast<uint64_t>(to_node2->entries_size()));
    replica.OnMessages({ack});
  }
  REQUIRE(applied_future.wait_for(milliseconds(0)) == std::future_status::ready);
  absl::StatusOr<lock::ApplyResult> result = applied_future.get();
  REQUIRE(result.ok());
  // A fresh cluster's time starts at 0 and advances only while a leader leads,
  // so it cannot exceed the time since this replica started (the bug this
  // pins added the machine's uptime instead).
  const int64_t since_start_ms =
      std::chrono::duration_cast<milliseconds>(Clock::now() - started).count();
  CHECK(result->result.cluster_time_ms() <= since_start_ms);
  replica.Stop();
}

namespace {

// Calls Status, TransferLeadership, Propose and LinearizableRead on `replica`
// and returns the answers each gave before returning (nullopt: none yet).
std::vector<std::optional<absl::Status>> AskEverything(Replica& replica) {
  std::vector<std::optional<absl::Status>> answers(4);
  replica.Status([&](absl::StatusOr<v1::StatusResponse> status) { answers[0] = status.status(); });
  replica.TransferLeadership(2, Clock::now() + milliseconds(1000),
                             [&](absl::Status status, LeaderInfo) { answers[1] = status; });
  v1::Command command;
  command.mutable_time_advance();
  replica.Propose(std::move(command),
                  [&](absl::StatusOr<lock::ApplyResult> result) { answers[2] = result.status(); });
  replica.LinearizableRead(
      [&](absl::Status status, const lock::LockStateMachine*) { answers[3] = status; });
  return answers;
}

}  // namespace

TEST_CASE("a stopped replica answers every request UNAVAILABLE instead of dropping it",
          "[replica][shutdown]") {
  CapturingSender* peers = nullptr;
  Replica replica(TestOptions(&peers), std::make_unique<raft::MemoryStorage>(), NullLogger());
  REQUIRE(replica.Start().ok());
  replica.Stop();
  // Each callback runs before its call returns: nothing is left to run it.
  for (const auto& answer : AskEverything(replica)) {
    REQUIRE(answer.has_value());
    CHECK(answer->code() == absl::StatusCode::kUnavailable);
  }
}

// raftlockd serves calls before Start() (and Start() can fail): a call queued
// for a loop that never runs would never be answered, and gRPC's server
// shutdown waits for every open call, so the refused daemon would never exit.
TEST_CASE("a replica that has not started answers every request UNAVAILABLE at once",
          "[replica][shutdown]") {
  CapturingSender* peers = nullptr;
  Replica replica(TestOptions(&peers), std::make_unique<raft::MemoryStorage>(), NullLogger());
  for (const auto& answer : AskEverything(replica)) {
    REQUIRE(answer.has_value());
    CHECK(answer->code() == absl::StatusCode::kUnavailable);
    CHECK(answer->message() == "the replica is starting");
  }
  replica.Stop();
  for (const auto& answer : AskEverything(replica)) {
    REQUIRE(answer.has_value());
    CHECK(answer->code() == absl::StatusCode::kUnavailable);
  }
}

namespace {

// Forwards every call to a MemoryStorage; tests override what they watch.
class ForwardingStorage : public raft::LogStorage {
 public:
  absl::StatusOr<raft::InitialState> GetInitialState() const override {
    return inner_.GetInitialState();
  }
  absl::StatusOr<std::vector<raft::Entry>> Entries(uint64_t lo, uint64_t hi,
                                                   uint64_t max_bytes) const override {
    return inner_.Entries(lo, hi, max_bytes);
  }
  absl::StatusOr<uint64_t> Term(uint64_t i) const override { return inner_.Term(i); }
  uint64_t FirstIndex() const override { return inner_.FirstIndex(); }
  uint64_t LastIndex() const override { return inner_.LastIndex(); }
  absl::StatusOr<raft::Snapshot> GetSnapshot() const override { return inner_.GetSnapshot(); }
  absl::Status Sync() override { return inner_.Sync(); }
  absl::Status Persist(const raft::PersistRequest& request) override {
    return inner_.Persist(request);
  }
  absl::Status CreateSnapshot(uint64_t index, const raft::ConfState& conf_state,
                              std::string data) override {
    return inner_.CreateSnapshot(index, conf_state, std::move(data));
  }
  absl::Status WriteSnapshot(const raft::Snapshot& snapshot) override {
    return inner_.WriteSnapshot(snapshot);
  }
  absl::StatusOr<bool> RecordSnapshot(raft::Snapshot snapshot) override {
    return inner_.RecordSnapshot(std::move(snapshot));
  }
  absl::Status Compact(uint64_t index) override { return inner_.Compact(index); }

 protected:
  raft::MemoryStorage inner_;
};

// A MemoryStorage that knows which of its writes are durable: a write is
// durable once a synced Persist wrote it or a later Sync() ran.
class SyncTrackingStorage final : public ForwardingStorage {
 public:
  absl::Status Sync() override {
    std::lock_guard<std::mutex> lock(mu_);
    durable_ = written_;
    return absl::OkStatus();
  }
  absl::Status Persist(const raft::PersistRequest& request) override {
    absl::Status status = inner_.Persist(request);
    std::lock_guard<std::mutex> lock(mu_);
    written_ = inner_.LastIndex();
    if (request.sync) durable_ = written_;
    return status;
  }

  // The last index every write up to which is durable.
  uint64_t durable() const {
    std::lock_guard<std::mutex> lock(mu_);
    return durable_;
  }

 private:
  mutable std::mutex mu_;
  uint64_t written_ = 0;  // guarded by mu_
  uint64_t durable_ = 0;  // guarded by mu_
};

// Records, for every append acknowledgement the replica sends, whether the
// entries it acknowledges were durable when it left.
class AckCheckingSender final : public PeerSender {
 public:
  explicit AckCheckingSender(const SyncTrackingStorage* storage) : storage_(storage) {}
  void Send(std::vector<RaftMessage> messages) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& m : messages) {
      if (m.type() != v1::MSG_APP_RESP || m.reject()) continue;
      acks_.push_back(Ack{m.index(), storage_->durable()});
    }
    arrived_.notify_all();
  }
  void Tick() override {}
  void Shutdown() override {}

  struct Ack {
    uint64_t index;    // the last entry acknowledged
    uint64_t durable;  // the storage's durable index when it was sent
  };
  // Waits at most `timeout` for an acknowledgement of `index` or later.
  std::vector<Ack> WaitForAck(uint64_t index, milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    arrived_.wait_for(lock, timeout, [&] { return !acks_.empty() && acks_.back().index >= index; });
    return acks_;
  }

 private:
  const SyncTrackingStorage* const storage_;
  std::mutex mu_;
  std::condition_variable arrived_;
  std::vector<Ack> acks_;
};

}  // namespace

// A follower writes and syncs each append on its loop (its syncer is idle:
// only a leader queues syncs there), and no acknowledgement may leave before
// the entries it covers are durable.
TEST_CASE("Raft 5.3: a follower acknowledges appended entries only once they are durable",
          "[replica][durability]") {
  auto owned_storage = std::make_unique<SyncTrackingStorage>();
  SyncTrackingStorage* storage = owned_storage.get();
  REQUIRE(raft::Node::Bootstrap(*storage, {1, 2, 3}).ok());
  AckCheckingSender* peers = nullptr;
  ReplicaOptions options = TestOptions(nullptr);
  options.testing_peer_sender = [&peers, storage](TransportHandler*) {
    auto sender = std::make_unique<AckCheckingSender>(storage);
    peers = sender.get();
    return sender;
  };
  Replica replica(std::move(options), std::move(owned_storage), NullLogger());
  REQUIRE(replica.Start().ok());
  REQUIRE(peers != nullptr);

  // Node 2, leader of term 2, appends one entry per message, each after the
  // previous one is acknowledged (as with a client that waits for each write).
  const uint64_t bootstrap_last = storage->LastIndex();
  constexpr uint64_t kAppends = 20;
  std::vector<AckCheckingSender::Ack> acks;
  for (uint64_t i = 0; i < kAppends; ++i) {
    RaftMessage append;
    append.set_type(v1::MSG_APP);
    append.set_from(2);
    append.set_to(1);
    append.set_term(2);
    append.set_index(bootstrap_last + i);
    append.set_log_term(i == 0 ? 1 : 2);
    append.set_commit(bootstrap_last);
    raft::Entry* entry = append.add_entries();
    entry->set_type(v1::ENTRY_NORMAL);
    entry->set_term(2);
    entry->set_index(bootstrap_last + i + 1);
    entry->set_data("entry " + std::to_string(i));
    replica.OnMessages({append});
    acks = peers->WaitForAck(entry->index(), milliseconds(5000));
    if (acks.empty() || acks.back().index < entry->index()) break;
  }
  const uint64_t last = bootstrap_last + kAppends;
  replica.Stop();
  REQUIRE(!acks.empty());
  CHECK(acks.back().index == last);
  for (const auto& ack : acks) {
    INFO("acknowledged index " << ack.index);
    CHECK(ack.durable >= ack.index);
  }
}

namespace {

// Answers, as node `peer`, the appends and heartbeats the leader sent it
// after position *next, for `duration`; advances *next.
void AckAs(Replica& replica, CapturingSender* peers, const std::vector<uint64_t>& acking,
           uint64_t term, milliseconds duration, size_t* next) {
  const auto until = Clock::now() + duration;
  while (Clock::now() < until) {
    auto m = peers->WaitFor(
        *next,
        [&](const RaftMessage& m) {
          return std::find(acking.begin(), acking.end(), m.to()) != acking.end() &&
                 (m.type() == v1::MSG_APP || m.type() == v1::MSG_HEARTBEAT);
        },
        milliseconds(20), next);
    if (!m) continue;
    if (m->type() == v1::MSG_HEARTBEAT) {
      RaftMessage ack = Reply(*m, v1::MSG_HEARTBEAT_RESP, term);
      ack.set_context(m->context());
      replica.OnMessages({ack});
    } else {
      RaftMessage ack = Reply(*m, v1::MSG_APP_RESP, term);
      ack.set_index(m->index() + static_cast<uint64_t>(m->entries_size()));
      replica.OnMessages({ack});
    }
  }
}

// Makes the started `replica` (node 1) leader with node 2's pre-vote and
// vote; returns the term. *next: position after the vote request.
uint64_t ElectWithNode2(Replica& replica, CapturingSender* peers, size_t* next) {
  auto pre_vote = peers->WaitFor(
      0, [](const RaftMessage& m) { return m.type() == v1::MSG_PRE_VOTE && m.to() == 2; },
      milliseconds(5000), next);
  REQUIRE(pre_vote.has_value());
  replica.OnMessages({Reply(*pre_vote, v1::MSG_PRE_VOTE_RESP, pre_vote->term())});
  auto vote = peers->WaitFor(
      *next, [](const RaftMessage& m) { return m.type() == v1::MSG_VOTE && m.to() == 2; },
      milliseconds(5000), next);
  REQUIRE(vote.has_value());
  replica.OnMessages({Reply(*vote, v1::MSG_VOTE_RESP, vote->term())});
  return vote->term();
}

}  // namespace

// Thesis 3.10: a leader that shuts down hands over to a caught-up follower.
// It picked the highest match, ties to the lowest id, so a follower that had
// crashed fully caught up got the TimeoutNow, and the cluster waited out an
// election timeout. It now prefers followers that answered lately.
TEST_CASE("thesis 3.10: a stopping leader transfers to a live follower, not a crashed one",
          "[replica][shutdown]") {
  CapturingSender* peers = nullptr;
  Replica replica(TestOptions(&peers), std::make_unique<raft::MemoryStorage>(), NullLogger());
  REQUIRE(replica.Start().ok());
  size_t next = 0;
  const uint64_t term = ElectWithNode2(replica, peers, &next);
  // Both followers catch up; then node 2 crashes and node 3 keeps answering
  // for more than two check-quorum periods (election timeout 500 ms).
  AckAs(replica, peers, {2, 3}, term, milliseconds(300), &next);
  REQUIRE(replica.leader().leader_id == 1);
  AckAs(replica, peers, {3}, term, milliseconds(1200), &next);
  REQUIRE(replica.leader().leader_id == 1);

  auto stopped =
      std::async(std::launch::async, [&replica] { replica.Stop(/*transfer_leadership=*/true); });
  auto timeout_now = peers->WaitFor(
      next, [](const RaftMessage& m) { return m.type() == v1::MSG_TIMEOUT_NOW; },
      milliseconds(3000), &next);
  stopped.wait();
  REQUIRE(timeout_now.has_value());
  CHECK(timeout_now->to() == 3);
}

// Stop() may race Start() (a daemon told to stop while it starts). Start set
// the loop thread after releasing its lock, so a Stop between the two saw no
// thread, and the destructor's Stop then left a joinable thread: terminate.
TEST_CASE("a Stop racing Start leaves no running or unjoined loop", "[replica][shutdown]") {
  for (int round = 0; round < 300; ++round) {
    CapturingSender* peers = nullptr;
    auto replica = std::make_unique<Replica>(TestOptions(&peers),
                                             std::make_unique<raft::MemoryStorage>(), NullLogger());
    std::promise<void> go;
    std::shared_future<void> started = go.get_future().share();
    auto starter = std::async(std::launch::async, [&replica, started] {
      started.wait();
      return replica->Start();
    });
    auto stopper = std::async(std::launch::async, [&replica, started] {
      started.wait();
      replica->Stop();
    });
    go.set_value();
    const absl::Status start = starter.get();
    stopper.get();
    REQUIRE((start.ok() || start.code() == absl::StatusCode::kUnavailable));
    replica.reset();  // terminated the process before the fix, now and then
  }
  SUCCEED("300 rounds");
}

namespace {

// A MemoryStorage whose snapshot writes take 600 ms, like a large state on a
// slow disk.
class SlowSnapshotStorage final : public ForwardingStorage {
 public:
  absl::Status CreateSnapshot(uint64_t index, const raft::ConfState& conf_state,
                              std::string data) override {
    std::this_thread::sleep_for(kWriteTime);
    return inner_.CreateSnapshot(index, conf_state, std::move(data));
  }
  absl::Status WriteSnapshot(const raft::Snapshot& snapshot) override {
    std::this_thread::sleep_for(kWriteTime);
    return inner_.WriteSnapshot(snapshot);
  }

 private:
  static constexpr milliseconds kWriteTime{600};
};

}  // namespace

// A leader wrote its snapshot file on the Raft loop: no heartbeat left while
// it wrote, and a large state on a slow disk passed the election timeout, so
// followers deposed a healthy leader every snapshot_interval entries. The
// file is now written on another thread, and recorded by the loop after.
TEST_CASE("a leader keeps sending heartbeats while its snapshot file is written",
          "[replica][snapshot]") {
  CapturingSender* peers = nullptr;
  ReplicaOptions options = TestOptions(&peers);
  options.snapshot_interval = 3;
  auto owned_storage = std::make_unique<SlowSnapshotStorage>();
  SlowSnapshotStorage* storage = owned_storage.get();
  Replica replica(std::move(options), std::move(owned_storage), NullLogger());
  REQUIRE(replica.Start().ok());
  size_t next = 0;
  const uint64_t term = ElectWithNode2(replica, peers, &next);
  AckAs(replica, peers, {2, 3}, term, milliseconds(200), &next);
  REQUIRE(replica.leader().leader_id == 1);

  // Enough committed entries for a snapshot; then watch the heartbeats to
  // node 3 while it is written.
  std::atomic<int> applied{0};
  for (int i = 0; i < 5; ++i) {
    v1::Command command;
    command.mutable_time_advance();
    replica.Propose(std::move(command),
                    [&applied](absl::StatusOr<lock::ApplyResult> r) { applied += r.ok(); });
  }
  const size_t watched_from = next;
  AckAs(replica, peers, {2, 3}, term, milliseconds(1500), &next);
  const auto silence =
      std::chrono::duration_cast<milliseconds>(peers->LongestSilenceTo(3, watched_from));
  replica.Stop();
  INFO("longest silence to node 3: " << silence.count() << " ms");
  CHECK(applied.load() == 5);
  CHECK(silence < milliseconds(300));  // heartbeats every 10 ms; the write takes 600 ms
  auto snapshot = storage->GetSnapshot();
  REQUIRE(snapshot.ok());
  CHECK(snapshot->metadata().index() >= 3);  // and the snapshot was recorded
}

// A replica told to stop while its snapshot file was being written waited for
// the write, then dropped it (the loop no longer took the record): the next
// start replayed the log from the older snapshot. Stop now records it.
TEST_CASE("a snapshot whose file is written while the replica stops is still recorded",
          "[replica][snapshot]") {
  CapturingSender* peers = nullptr;
  ReplicaOptions options = TestOptions(&peers);
  options.snapshot_interval = 3;
  auto owned_storage = std::make_unique<SlowSnapshotStorage>();
  SlowSnapshotStorage* storage = owned_storage.get();
  Replica replica(std::move(options), std::move(owned_storage), NullLogger());
  REQUIRE(replica.Start().ok());
  size_t next = 0;
  const uint64_t term = ElectWithNode2(replica, peers, &next);
  std::atomic<int> applied{0};
  for (int i = 0; i < 5; ++i) {
    v1::Command command;
    command.mutable_time_advance();
    replica.Propose(std::move(command),
                    [&applied](absl::StatusOr<lock::ApplyResult> r) { applied += r.ok(); });
  }
  const auto until = Clock::now() + milliseconds(3000);
  while (applied.load() < 5 && Clock::now() < until) {
    AckAs(replica, peers, {2, 3}, term, milliseconds(20), &next);
  }
  REQUIRE(applied.load() == 5);
  replica.Stop();  // the 600-ms write started when the third entry applied
  auto snapshot = storage->GetSnapshot();
  REQUIRE(snapshot.ok());
  CHECK(snapshot->metadata().index() >= 3);
}

// Thesis 3.10: a leader refuses proposals while it transfers leadership. When
// the transfer's caller was answered DEADLINE_EXCEEDED (the target is down),
// the leader still refused them until the core gave up, an election timeout
// after the transfer began. It now abandons the transfer with the answer.
TEST_CASE("thesis 3.10: a transfer that timed out stops blocking proposals at once",
          "[replica][transfer]") {
  CapturingSender* peers = nullptr;
  Replica replica(TestOptions(&peers), std::make_unique<raft::MemoryStorage>(), NullLogger());
  REQUIRE(replica.Start().ok());
  size_t next = 0;
  const uint64_t term = ElectWithNode2(replica, peers, &next);
  AckAs(replica, peers, {2}, term, milliseconds(200), &next);  // node 3 is down
  REQUIRE(replica.leader().leader_id == 1);

  std::promise<absl::Status> transferred;
  replica.TransferLeadership(3, Clock::now() + milliseconds(100),
                             [&transferred](absl::Status status, LeaderInfo) {
                               transferred.set_value(std::move(status));
                             });
  auto transfer_answer = transferred.get_future();
  const auto until = Clock::now() + milliseconds(2000);
  while (transfer_answer.wait_for(milliseconds(0)) != std::future_status::ready &&
         Clock::now() < until) {
    AckAs(replica, peers, {2}, term, milliseconds(20), &next);
  }
  REQUIRE(transfer_answer.wait_for(milliseconds(0)) == std::future_status::ready);
  CHECK(transfer_answer.get().code() == absl::StatusCode::kDeadlineExceeded);

  // Well within the election timeout (500 ms) since the transfer began.
  std::promise<absl::Status> proposed;
  v1::Command command;
  command.mutable_time_advance();
  replica.Propose(std::move(command), [&proposed](absl::StatusOr<lock::ApplyResult> result) {
    proposed.set_value(result.status());
  });
  auto proposal_answer = proposed.get_future();
  const auto proposal_until = Clock::now() + milliseconds(2000);
  while (proposal_answer.wait_for(milliseconds(0)) != std::future_status::ready &&
         Clock::now() < proposal_until) {
    AckAs(replica, peers, {2}, term, milliseconds(20), &next);
  }
  REQUIRE(proposal_answer.wait_for(milliseconds(0)) == std::future_status::ready);
  const absl::Status status = proposal_answer.get();
  INFO(status.ToString());
  CHECK(status.ok());
  replica.Stop();
}

}  // namespace raftlock::server
