#include "server/transport/peer_link.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstddef>
#include <iterator>

namespace raftlock::server {

using raftlock::v1::Message;
using raftlock::v1::RaftBatch;
using raftlock::v1::RaftStreamSummary;

// The gRPC client stream. It holds itself open (AddHold) so that writes can be
// started from any thread. PeerLink releases the hold exactly once, when no
// write is pending (tracked by PeerLink::writing_ under PeerLink::mu_), so a
// write is never started on a finished call. OnDone follows the release.
class PeerLink::Stream : public grpc::ClientWriteReactor<RaftBatch> {
 public:
  explicit Stream(PeerLink* link) : link_(link) {}

  void Start(raftlock::v1::RaftTransport::Stub* stub) {
    stub->async()->Stream(&context_, &summary_, this);
    AddHold();
    StartCall();
  }

  // Writes `batch`. Precondition: the hold is still held and no other write is
  // outstanding.
  void Write(RaftBatch batch) {
    pending_ = std::move(batch);
    StartWrite(&pending_);
  }
  // The batch of the last write. Precondition: that write is done.
  RaftBatch TakePending() { return std::move(pending_); }

  // Makes any outstanding write fail promptly. Safe from any thread while the
  // hold is held.
  void Cancel() { context_.TryCancel(); }

  void TakeExtraHold() { AddHold(); }
  void ReleaseHold() { RemoveHold(); }

  void OnWriteDone(bool ok) override { link_->OnStreamWriteDone(this, ok); }

  void OnDone(const grpc::Status& status) override {
    link_->OnStreamDone(this, status);
    delete this;
  }

  bool hold_released = false;  // guarded by PeerLink::mu_
  bool delivered = false;      // a write succeeded; guarded by PeerLink::mu_

 private:
  PeerLink* const link_;
  grpc::ClientContext context_;
  RaftStreamSummary summary_;
  RaftBatch pending_;
};

PeerLink::PeerLink(PeerLinkOptions options, std::shared_ptr<raftlock::v1::RaftTransport::Stub> stub,
                   std::function<void(uint64_t)> on_dropped, std::shared_ptr<spdlog::logger> logger)
    : options_(std::move(options)),
      stub_(std::move(stub)),
      on_dropped_(std::move(on_dropped)),
      logger_(std::move(logger)),
      backoff_(options_.min_backoff) {}

PeerLink::~PeerLink() { Shutdown(); }

void PeerLink::Send(std::vector<Message> messages) {
  if (messages.empty()) return;
  bool dropped = false;
  Stream* to_write = nullptr;
  RaftBatch batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutdown_) return;
    if (queue_.size() >= options_.max_queued_batches) {
      dropped = true;
    } else {
      queue_.push_back(std::move(messages));
    }
    MaybeConnectLocked();
    if (stream_usable_ && !writing_ && TakeNextBatchLocked(&batch)) {
      writing_ = true;
      to_write = stream_;
    }
  }
  if (to_write != nullptr) to_write->Write(std::move(batch));
  if (dropped) on_dropped_(options_.peer_id);
}

void PeerLink::Tick() {
  Stream* to_write = nullptr;
  RaftBatch batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutdown_) return;
    MaybeConnectLocked();
    if (stream_usable_ && !writing_ && TakeNextBatchLocked(&batch)) {
      writing_ = true;
      to_write = stream_;
    }
  }
  if (to_write != nullptr) to_write->Write(std::move(batch));
}

void PeerLink::MaybeConnectLocked() {
  if (stream_ != nullptr || shutdown_) return;
  if (std::chrono::steady_clock::now() < next_connect_) return;
  stream_ = new Stream(this);
  stream_usable_ = true;
  writing_ = false;
  stream_->Start(stub_.get());
}

bool PeerLink::TakeNextBatchLocked(RaftBatch* batch) {
  if (queue_.empty()) return false;
  batch->set_cluster_id(options_.cluster_id);
  batch->set_from(options_.self_id);
  batch->set_to(options_.peer_id);
  // Cut at message boundaries, also inside one Send's messages: a Ready can
  // hold hundreds of appends, more than the receiver accepts in one message.
  size_t bytes = 0;
  while (!queue_.empty()) {
    auto& front = queue_.front();
    size_t taken = 0;
    for (; taken < front.size(); ++taken) {
      const size_t size = front[taken].ByteSizeLong();
      if (batch->messages_size() > 0 && bytes + size > options_.max_batch_bytes) break;
      bytes += size;
      *batch->add_messages() = std::move(front[taken]);
    }
    if (taken < front.size()) {
      front.erase(front.begin(), front.begin() + static_cast<std::ptrdiff_t>(taken));
      break;  // the rest starts the next batch
    }
    queue_.pop_front();
  }
  return true;
}

void PeerLink::OnStreamWriteDone(Stream* stream, bool ok) {
  Stream* to_write = nullptr;
  bool release_hold = false;
  RaftBatch batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok || shutdown_ || stream != stream_) {
      if (stream == stream_) {
        stream_usable_ = false;
        // Kept until OnStreamDone knows why the stream ended (a lost
        // connection: sent again on the next stream).
        if (!ok && !shutdown_ && stream->delivered) {
          RaftBatch failed = stream->TakePending();
          unsent_.assign(std::make_move_iterator(failed.mutable_messages()->begin()),
                         std::make_move_iterator(failed.mutable_messages()->end()));
        }
      }
      if (!stream->hold_released) {
        stream->hold_released = true;
        release_hold = true;
      }
    } else {
      stream->delivered = true;
      if (logged_down_) {
        logger_->info("peer {} reachable again", options_.peer_id);
        logged_down_ = false;
      }
      backoff_ = options_.min_backoff;
      if (TakeNextBatchLocked(&batch)) {
        writing_ = true;
        to_write = stream_;
      }
    }
  }
  if (release_hold) stream->ReleaseHold();
  if (to_write != nullptr) to_write->Write(std::move(batch));
}

void PeerLink::OnStreamDone(Stream* stream, const grpc::Status& status) {
  bool dropped = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stream == stream_) {
      stream_ = nullptr;
      stream_usable_ = false;
      writing_ = false;
      const auto now = std::chrono::steady_clock::now();
      // A working stream whose connection went away (UNAVAILABLE: the peer
      // restarted, and gRPC noticed only at our next write) reconnects at the
      // next tick and keeps its messages, the failed write's first. At most
      // once per max_backoff; a peer that refuses our batches (another
      // cluster, a wrong node) or fails again takes the branch below.
      if (stream->delivered && !shutdown_ && status.error_code() == grpc::StatusCode::UNAVAILABLE &&
          now - last_fast_reconnect_ >= options_.max_backoff) {
        last_fast_reconnect_ = now;
        next_connect_ = now;
        if (!unsent_.empty()) queue_.push_front(std::move(unsent_));
        unsent_.clear();
      } else {
        next_connect_ = now + backoff_;
        backoff_ = std::min(backoff_ * 2, options_.max_backoff);
        // Messages queued for a dead stream (and the failed write's) are
        // stale by the time it returns; Raft retransmits what matters.
        dropped = !queue_.empty() || !unsent_.empty();
        unsent_.clear();
        queue_.clear();
      }
      if (!shutdown_ && !logged_down_) {
        logger_->warn("peer {} stream closed: {} ({}); reconnecting with backoff", options_.peer_id,
                      status.error_message(), static_cast<int>(status.error_code()));
        logged_down_ = true;
      }
    }
    // Shutdown waits for this report too: the link may be destroyed once
    // Shutdown returns.
    if (dropped) ++reports_running_;
    stream_gone_.notify_all();
  }
  if (!dropped) return;
  on_dropped_(options_.peer_id);
  std::lock_guard<std::mutex> lock(mu_);
  --reports_running_;
  stream_gone_.notify_all();
}

void PeerLink::Shutdown() {
  std::unique_lock<std::mutex> lock(mu_);
  shutdown_ = true;
  queue_.clear();
  Stream* stream = stream_;
  if (stream != nullptr && !stream->hold_released) {
    // The main hold is still held (its release is decided under mu_), so an
    // extra hold is safe and keeps the stream alive while we cancel it.
    stream->TakeExtraHold();
    // With a write pending, OnStreamWriteDone releases the main hold after the
    // cancelled write fails; otherwise release it here.
    bool release_main = !writing_;
    if (release_main) stream->hold_released = true;
    lock.unlock();
    stream->Cancel();
    if (release_main) stream->ReleaseHold();
    stream->ReleaseHold();  // the extra one
    lock.lock();
  }
  stream_gone_.wait(lock, [this] { return stream_ == nullptr && reports_running_ == 0; });
}

}  // namespace raftlock::server
