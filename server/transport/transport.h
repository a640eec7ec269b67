// Peer transport: Raft messages between replicas over gRPC streams.
//
// Sending: one long-lived client stream per peer, fed from a bounded queue and
// pipelined (batches are written back to back without waiting for replies,
// which Raft carries in its own messages). A broken stream is re-opened with
// exponential backoff. MSG_SNAP messages go through a separate chunked call.
// Receiving: the RaftTransport service checks the cluster id and the sender's
// node id before handing anything to the node.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "proto/raft.pb.h"

namespace grpc {
class Service;
}
namespace spdlog {
class logger;
}

namespace raftlock::server {

using RaftMessage = raftlock::v1::Message;

struct TransportOptions {
  std::string cluster_id;
  uint64_t self_id = 0;
  // Every other member: node id -> peer address ("127.0.0.1:7001").
  std::map<uint64_t, std::string> peers;
  // Batches queued per peer beyond which new messages are dropped (Raft
  // retransmits) and the peer is reported unreachable.
  size_t max_queued_batches = 1024;
  // Upper bound on one coalesced batch on the wire.
  size_t max_batch_bytes = 4 << 20;
  std::chrono::milliseconds min_backoff{50};
  // A restarted peer is reached within this (it may be needed for a quorum);
  // a reconnect attempt to a dead peer on loopback or a LAN costs little.
  std::chrono::milliseconds max_backoff{250};
  size_t snapshot_chunk_bytes = 1 << 20;
  // Deadline of one whole snapshot transfer.
  std::chrono::milliseconds snapshot_timeout{60000};
};

// Receives what the transport learns. Called from gRPC threads: an
// implementation must be thread-safe and must not block (queue and return).
class TransportHandler {
 public:
  virtual ~TransportHandler() = default;
  // Messages from one peer, in the order the peer sent them.
  virtual void OnMessages(std::vector<RaftMessage> messages) = 0;
  // A message to `peer` was dropped (stream down or queue full).
  virtual void OnUnreachable(uint64_t peer) = 0;
  // A snapshot transfer to `peer` finished.
  virtual void OnSnapshotStatus(uint64_t peer, bool success) = 0;
};

// Where a replica sends its Raft messages: the gRPC Transport below, or a
// test's in-process fake.
class PeerSender {
 public:
  virtual ~PeerSender() = default;
  // Queues messages for their recipients and returns without waiting for the
  // network. Thread-safe.
  virtual void Send(std::vector<RaftMessage> messages) = 0;
  // Called every tick of the replica loop.
  virtual void Tick() = 0;
  // Stops sending and receiving; no handler call starts after it returns.
  virtual void Shutdown() = 0;
};

class Transport final : public PeerSender {
 public:
  // `handler` must outlive the transport.
  Transport(TransportOptions options, TransportHandler* handler,
            std::shared_ptr<spdlog::logger> logger);
  ~Transport();  // calls Shutdown()
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // The receiving service; register it on the peer gRPC server before start.
  grpc::Service* service();

  // As PeerSender. Messages to unknown ids are dropped with a log line.
  void Send(std::vector<RaftMessage> messages) override;

  // Re-opens broken streams whose backoff has passed.
  void Tick() override;

  // As PeerSender; also waits for in-flight snapshot transfers.
  void Shutdown() override;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace raftlock::server
