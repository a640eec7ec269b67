#include "server/node/log_syncer.h"

#include <pthread.h>

#include "storage/fail_stop.h"

namespace raftlock::server {

LogSyncer::LogSyncer(std::function<absl::Status()> sync,
                     std::function<void(std::vector<raft::Message>)> send,
                     std::function<void(uint64_t index, uint64_t term)> on_durable)
    : sync_(std::move(sync)),
      send_(std::move(send)),
      on_durable_(std::move(on_durable)),
      thread_([this] { Run(); }) {
  pthread_setname_np(thread_.native_handle(), "log-syncer");
}

LogSyncer::~LogSyncer() { Stop(); }

void LogSyncer::Submit(Job job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(job));
  }
  work_ready_.notify_one();
}

bool LogSyncer::MayPrecedeSync(const raft::Message& message) {
  return message.type() == raftlock::v1::MSG_HEARTBEAT_RESP;
}

bool LogSyncer::Idle() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.empty() && !busy_;
}

void LogSyncer::WaitIdle() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_.wait(lock, [this] { return queue_.empty() && !busy_; });
}

void LogSyncer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_ready_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void LogSyncer::Run() {
  std::deque<Job> jobs;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      busy_ = false;
      if (queue_.empty()) idle_.notify_all();
      work_ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping with nothing left to do
      jobs.swap(queue_);
      busy_ = true;
    }
    bool needs_sync = false;
    uint64_t last_index = 0;
    uint64_t last_term = 0;
    for (const Job& job : jobs) {
      needs_sync = needs_sync || job.needs_sync;
      if (job.last_index != 0) {
        last_index = job.last_index;
        last_term = job.last_term;
      }
    }
    if (needs_sync) {
      absl::Status status = sync_();
      if (!status.ok()) storage::FailStop("syncing the Raft log", status.ToString());
    }
    for (Job& job : jobs) {
      if (!job.messages.empty()) send_(std::move(job.messages));
    }
    if (last_index != 0) on_durable_(last_index, last_term);
    jobs.clear();
  }
}

}  // namespace raftlock::server
