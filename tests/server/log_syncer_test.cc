// LogSyncer: acknowledgements leave only after the sync of the writes before
// them, and one sync serves every job queued meanwhile (group commit).
#include "server/node/log_syncer.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

using raftlock::server::LogSyncer;
using namespace std::chrono_literals;

namespace {

// Records what the syncer does, in order; the first sync can be held open.
class Recorder {
 public:
  LogSyncer MakeSyncer() {
    return LogSyncer(
        [this] {
          std::unique_lock<std::mutex> lock(mu_);
          events_.push_back("sync");
          ++syncs_;
          changed_.notify_all();
          changed_.wait(lock, [this] { return !hold_first_sync_ || syncs_ > 1; });
          hold_first_sync_ = false;
          return absl::OkStatus();
        },
        [this](std::vector<raftlock::raft::Message> messages) {
          std::lock_guard<std::mutex> lock(mu_);
          for (const auto& m : messages) events_.push_back("send " + std::to_string(m.index()));
        },
        [this](uint64_t index, uint64_t term) {
          std::lock_guard<std::mutex> lock(mu_);
          events_.push_back("durable " + std::to_string(index) + "/" + std::to_string(term));
        });
  }

  void HoldFirstSync() { hold_first_sync_ = true; }
  void ReleaseFirstSync() {
    std::lock_guard<std::mutex> lock(mu_);
    hold_first_sync_ = false;
    changed_.notify_all();
  }
  // Waits (bounded) until a sync has started.
  bool WaitForSync() {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, 5s, [this] { return syncs_ > 0; });
  }
  std::vector<std::string> events() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  int syncs() {
    std::lock_guard<std::mutex> lock(mu_);
    return syncs_;
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<std::string> events_;
  int syncs_ = 0;
  bool hold_first_sync_ = false;
};

LogSyncer::Job WriteJob(uint64_t index, uint64_t term, bool with_ack) {
  LogSyncer::Job job;
  job.needs_sync = true;
  job.last_index = index;
  job.last_term = term;
  if (with_ack) {
    raftlock::raft::Message ack;
    ack.set_type(raftlock::v1::MSG_APP_RESP);
    ack.set_index(index);
    job.messages.push_back(ack);
  }
  return job;
}

}  // namespace

TEST_CASE("LogSyncer: an acknowledgement is sent only after the sync of its write",
          "[log_syncer]") {
  Recorder recorder;
  LogSyncer syncer = recorder.MakeSyncer();
  syncer.Submit(WriteJob(7, 2, /*with_ack=*/true));
  syncer.WaitIdle();
  CHECK(recorder.events() == std::vector<std::string>{"sync", "send 7", "durable 7/2"});
  CHECK(syncer.Idle());
}

TEST_CASE("LogSyncer: one sync serves every job queued while the previous sync ran",
          "[log_syncer]") {
  Recorder recorder;
  recorder.HoldFirstSync();
  LogSyncer syncer = recorder.MakeSyncer();
  syncer.Submit(WriteJob(5, 2, true));
  REQUIRE(recorder.WaitForSync());
  CHECK_FALSE(syncer.Idle());
  syncer.Submit(WriteJob(6, 2, true));
  syncer.Submit(WriteJob(7, 3, true));
  syncer.Submit(WriteJob(8, 3, true));
  recorder.ReleaseFirstSync();
  syncer.WaitIdle();
  CHECK(recorder.syncs() == 2);
  CHECK(recorder.events() == std::vector<std::string>{"sync", "send 5", "durable 5/2", "sync",
                                                      "send 6", "send 7", "send 8", "durable 8/3"});
}

TEST_CASE("LogSyncer: messages that follow no new write are sent without a sync, in order",
          "[log_syncer]") {
  Recorder recorder;
  recorder.HoldFirstSync();
  LogSyncer syncer = recorder.MakeSyncer();
  syncer.Submit(WriteJob(5, 2, true));
  REQUIRE(recorder.WaitForSync());
  LogSyncer::Job heartbeat_ack;  // queued behind the write: waits for it
  raftlock::raft::Message m;
  m.set_index(0);
  heartbeat_ack.messages.push_back(m);
  syncer.Submit(std::move(heartbeat_ack));
  recorder.ReleaseFirstSync();
  syncer.WaitIdle();
  CHECK(recorder.syncs() == 1);
  CHECK(recorder.events() == std::vector<std::string>{"sync", "send 5", "durable 5/2", "send 0"});
}

TEST_CASE("LogSyncer: Stop finishes the queued jobs first", "[log_syncer]") {
  Recorder recorder;
  recorder.HoldFirstSync();
  LogSyncer syncer = recorder.MakeSyncer();
  syncer.Submit(WriteJob(5, 2, false));
  REQUIRE(recorder.WaitForSync());
  syncer.Submit(WriteJob(9, 2, true));
  recorder.ReleaseFirstSync();
  syncer.Stop();
  CHECK(recorder.events() ==
        std::vector<std::string>{"sync", "durable 5/2", "sync", "send 9", "durable 9/2"});
}

TEST_CASE("LogSyncer: only heartbeat responses may leave before the log is durable",
          "[log_syncer]") {
  auto of_type = [](raftlock::v1::MessageType type) {
    raftlock::raft::Message m;
    m.set_type(type);
    return m;
  };
  CHECK(LogSyncer::MayPrecedeSync(of_type(raftlock::v1::MSG_HEARTBEAT_RESP)));
  // An append acknowledgement claims the entries are durable (Figure 2); a
  // vote claims the recorded vote is.
  CHECK_FALSE(LogSyncer::MayPrecedeSync(of_type(raftlock::v1::MSG_APP_RESP)));
  CHECK_FALSE(LogSyncer::MayPrecedeSync(of_type(raftlock::v1::MSG_VOTE_RESP)));
  CHECK_FALSE(LogSyncer::MayPrecedeSync(of_type(raftlock::v1::MSG_PRE_VOTE_RESP)));
  CHECK_FALSE(LogSyncer::MayPrecedeSync(of_type(raftlock::v1::MSG_READ_INDEX_RESP)));
}
