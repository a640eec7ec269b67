// LogSyncer: makes a replica's log writes durable off the loop thread.
//
// The loop writes each Ready without syncing and hands the syncer a job: the
// last entry it wrote and the messages that may leave only once that write is
// durable (a follower's append acknowledgements). The syncer thread takes
// every queued job at once, syncs the log one time for all of them (group
// commit), sends their messages in submission order, and reports the last
// durable entry, which the loop passes to raft::Node::MarkDurable. So the
// loop keeps stepping messages and batching proposals while the disk works,
// and a leader's followers can commit an entry before the leader's own sync
// ends (Raft thesis 10.2.1). A follower whose syncer is idle syncs on its loop
// instead (Replica::HandleReady): its acknowledgement then needs no thread
// hand-off, and a heartbeat arriving meanwhile waits for that one sync.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "raft/node.h"

namespace raftlock::server {

class LogSyncer {
 public:
  struct Job {
    // True when the job follows a write that is not yet durable.
    bool needs_sync = false;
    // The last entry that write holds (index 0: none).
    uint64_t last_index = 0;
    uint64_t last_term = 0;
    // Sent once every write before the job is durable.
    std::vector<raft::Message> messages;
  };

  // `sync` makes every earlier write durable (raft::LogStorage::Sync); a
  // failure stops the process. `send` and `on_durable` run on the syncer
  // thread and must not block.
  LogSyncer(std::function<absl::Status()> sync,
            std::function<void(std::vector<raft::Message>)> send,
            std::function<void(uint64_t index, uint64_t term)> on_durable);
  ~LogSyncer();  // calls Stop()

  // Queues `job`. Call only after the write it follows has returned.
  void Submit(Job job);

  // True when no job is queued or in progress: every write submitted so far
  // is durable and its messages are sent.
  bool Idle() const;

  // Blocks until Idle().
  void WaitIdle();

  // Finishes the queued jobs and joins the thread. Idempotent.
  void Stop();

  // True for messages that claim nothing about this node's log (heartbeat
  // responses), which may leave before earlier writes are durable: a busy
  // disk then delays check-quorum and ReadIndex rounds by at most the one
  // sync a follower may be running on its loop.
  static bool MayPrecedeSync(const raft::Message& message);

 private:
  void Run();

  const std::function<absl::Status()> sync_;
  const std::function<void(std::vector<raft::Message>)> send_;
  const std::function<void(uint64_t, uint64_t)> on_durable_;

  mutable std::mutex mu_;
  std::condition_variable work_ready_;
  std::condition_variable idle_;
  std::deque<Job> queue_;
  bool busy_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace raftlock::server
