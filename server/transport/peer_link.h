// One peer's outgoing stream: a bounded queue of batches written back to back
// on a gRPC client stream, re-opened with exponential backoff when it breaks.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "proto/transport.grpc.pb.h"

namespace spdlog {
class logger;
}

namespace raftlock::server {

struct PeerLinkOptions {
  std::string cluster_id;
  uint64_t self_id = 0;
  uint64_t peer_id = 0;
  size_t max_queued_batches = 1024;
  size_t max_batch_bytes = 4 << 20;
  std::chrono::milliseconds min_backoff{50};
  std::chrono::milliseconds max_backoff{250};  // see TransportOptions
};

class PeerLink {
 public:
  // `on_dropped` is called (without locks held) when messages to the peer are
  // dropped; it must not block.
  PeerLink(PeerLinkOptions options, std::shared_ptr<raftlock::v1::RaftTransport::Stub> stub,
           std::function<void(uint64_t peer)> on_dropped, std::shared_ptr<spdlog::logger> logger);
  ~PeerLink();  // calls Shutdown()

  // Queues `messages` (all addressed to this peer). Never blocks on the network.
  void Send(std::vector<raftlock::v1::Message> messages);

  // Opens the stream if it is down and its backoff has passed.
  void Tick();

  // Cancels the stream and waits until gRPC has released it and no stream
  // callback is still reporting dropped messages. Once it returns, no
  // callback touches this link.
  void Shutdown();

 private:
  class Stream;
  friend class Stream;

  // Starts a stream if none is open and backoff allows. Requires mu_ held.
  void MaybeConnectLocked();
  // Takes the next batch to write: queued messages in order, up to
  // max_batch_bytes (at least one message). False if none. Requires mu_.
  bool TakeNextBatchLocked(raftlock::v1::RaftBatch* batch);
  // Stream callbacks (called from gRPC threads).
  void OnStreamWriteDone(Stream* stream, bool ok);
  void OnStreamDone(Stream* stream, const grpc::Status& status);

  const PeerLinkOptions options_;
  const std::shared_ptr<raftlock::v1::RaftTransport::Stub> stub_;
  const std::function<void(uint64_t)> on_dropped_;
  const std::shared_ptr<spdlog::logger> logger_;

  std::mutex mu_;
  std::condition_variable stream_gone_;
  std::deque<std::vector<raftlock::v1::Message>> queue_;
  Stream* stream_ = nullptr;  // owned by gRPC until OnDone
  bool writing_ = false;
  bool stream_usable_ = false;
  bool shutdown_ = false;
  std::chrono::steady_clock::time_point next_connect_{};
  std::chrono::milliseconds backoff_;
  bool logged_down_ = false;
  // The batch of the write that failed on the current stream, if it had
  // delivered before; OnStreamDone re-queues or drops it.
  std::vector<raftlock::v1::Message> unsent_;
  std::chrono::steady_clock::time_point last_fast_reconnect_{};
  // on_dropped_ calls made by OnStreamDone that have not returned yet.
  int reports_running_ = 0;
};

}  // namespace raftlock::server
