#include "server/transport/transport.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>
#include <zlib.h>

#include <atomic>
#include <list>
#include <mutex>
#include <thread>

#include "absl/strings/escaping.h"
#include "proto/transport.grpc.pb.h"
#include "server/transport/peer_link.h"

namespace raftlock::server {

using raftlock::v1::RaftBatch;
using raftlock::v1::RaftStreamSummary;
using raftlock::v1::SnapshotAck;
using raftlock::v1::SnapshotChunk;

namespace {

// A snapshot larger than this is refused before any of it is received; far
// above what the state machine's limits allow, it only stops absurd sizes.
constexpr uint64_t kMaxSnapshotBytes = uint64_t{64} << 30;
// Memory reserved up front for an incoming snapshot, whatever size it claims.
constexpr uint64_t kSnapshotReserveBytes = uint64_t{64} << 20;
// How much of a refused peer's cluster id a log line shows.
constexpr size_t kMaxShownClusterId = 64;

uint32_t Crc32(const std::string& data) {
  uLong crc = crc32(0L, Z_NULL, 0);
  size_t offset = 0;
  while (offset < data.size()) {
    size_t n = std::min<size_t>(data.size() - offset, 1u << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(data.data() + offset), static_cast<uInt>(n));
    offset += n;
  }
  return static_cast<uint32_t>(crc);
}

std::shared_ptr<grpc::Channel> MakePeerChannel(const std::string& address) {
  grpc::ChannelArguments args;
  // Detect a dead or paused peer within a few seconds even on an idle stream,
  // and retry connecting quickly: Raft wants messages to flow soon after a
  // peer returns. (raftlockd_main.cc lets the peer server accept this ping rate.)
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 2000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 2000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 64 << 20);
  args.SetInt(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, 64 << 20);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

}  // namespace

class Transport::Impl : public raftlock::v1::RaftTransport::CallbackService {
 public:
  Impl(TransportOptions options, TransportHandler* handler, std::shared_ptr<spdlog::logger> logger)
      : options_(std::move(options)), handler_(handler), logger_(std::move(logger)) {
    for (const auto& [id, address] : options_.peers) {
      auto stub = std::shared_ptr<raftlock::v1::RaftTransport::Stub>(
          raftlock::v1::RaftTransport::NewStub(MakePeerChannel(address)));
      stubs_[id] = stub;
      PeerLinkOptions link_options;
      link_options.cluster_id = options_.cluster_id;
      link_options.self_id = options_.self_id;
      link_options.peer_id = id;
      link_options.max_queued_batches = options_.max_queued_batches;
      link_options.max_batch_bytes = options_.max_batch_bytes;
      link_options.min_backoff = options_.min_backoff;
      link_options.max_backoff = options_.max_backoff;
      links_[id] = std::make_unique<PeerLink>(
          link_options, stub, [this](uint64_t peer) { handler_->OnUnreachable(peer); }, logger_);
    }
  }

  ~Impl() override { Shutdown(); }

  void Send(std::vector<RaftMessage> messages) {
    std::map<uint64_t, std::vector<RaftMessage>> by_peer;
    for (auto& m : messages) {
      if (m.type() == raftlock::v1::MSG_SNAP) {
        SendSnapshot(std::move(m));
        continue;
      }
      by_peer[m.to()].push_back(std::move(m));
    }
    for (auto& [peer, batch] : by_peer) {
      auto it = links_.find(peer);
      if (it == links_.end()) {
        logger_->warn("dropping {} message(s) to unknown node {}", batch.size(), peer);
        continue;
      }
      it->second->Send(std::move(batch));
    }
  }

  void Tick() {
    for (auto& [id, link] : links_) link->Tick();
  }

  void Shutdown() {
    if (shut_down_.exchange(true)) return;
    for (auto& [id, link] : links_) link->Shutdown();
    std::list<std::unique_ptr<SnapshotSender>> senders;
    {
      std::lock_guard<std::mutex> lock(snapshot_mu_);
      senders.swap(snapshot_senders_);
      for (auto& sender : senders) sender->context.TryCancel();
    }
    for (auto& sender : senders) sender->thread.join();
  }

  // --- Receiving ---------------------------------------------------------

  // Checks that a batch or chunk comes from a member of this cluster and is
  // meant for this node. Returns OK or the status to end the call with.
  grpc::Status CheckSender(const std::string& cluster_id, uint64_t from, uint64_t to) {
    if (cluster_id != options_.cluster_id) {
      // Escaped and cut: the id comes from the peer and goes into one log line.
      const std::string shown = absl::CEscape(cluster_id.substr(0, kMaxShownClusterId)) +
                                (cluster_id.size() > kMaxShownClusterId ? "..." : "");
      logger_->warn("refused peer message from node {} of cluster '{}' (this is cluster '{}')",
                    from, shown, options_.cluster_id);
      return grpc::Status(
          grpc::StatusCode::PERMISSION_DENIED,
          "cluster_id '" + shown + "' does not match this cluster '" + options_.cluster_id + "'");
    }
    if (options_.peers.find(from) == options_.peers.end()) {
      logger_->warn("refused peer message from unknown node {}", from);
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          "node " + std::to_string(from) + " is not a member of this cluster");
    }
    if (to != options_.self_id) {
      logger_->warn("refused peer message from node {} addressed to node {} (this is node {})",
                    from, to, options_.self_id);
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          "message addressed to node " + std::to_string(to) + ", this is node " +
                              std::to_string(options_.self_id));
    }
    return grpc::Status::OK;
  }

  class StreamReader : public grpc::ServerReadReactor<RaftBatch> {
   public:
    explicit StreamReader(Impl* impl) : impl_(impl) { StartRead(&batch_); }

    void OnReadDone(bool ok) override {
      if (!ok) {
        Finish(grpc::Status::OK);
        return;
      }
      grpc::Status check = impl_->CheckSender(batch_.cluster_id(), batch_.from(), batch_.to());
      if (!check.ok()) {
        Finish(check);
        return;
      }
      std::vector<RaftMessage> messages;
      messages.reserve(batch_.messages_size());
      for (auto& m : *batch_.mutable_messages()) {
        if (m.from() != batch_.from()) continue;  // a peer speaks only for itself
        messages.push_back(std::move(m));
      }
      if (!messages.empty()) impl_->handler_->OnMessages(std::move(messages));
      batch_.Clear();
      StartRead(&batch_);
    }

    void OnDone() override { delete this; }

   private:
    Impl* const impl_;
    RaftBatch batch_;
  };

  grpc::ServerReadReactor<RaftBatch>* Stream(grpc::CallbackServerContext* /*context*/,
                                             RaftStreamSummary* /*summary*/) override {
    return new StreamReader(this);
  }

  class SnapshotReader : public grpc::ServerReadReactor<SnapshotChunk> {
   public:
    SnapshotReader(Impl* impl, SnapshotAck* ack) : impl_(impl), ack_(ack) { StartRead(&chunk_); }

    void OnReadDone(bool ok) override {
      if (!ok) {
        FinishTransfer();
        return;
      }
      if (!started_) {
        grpc::Status check = impl_->CheckSender(chunk_.cluster_id(), chunk_.from(), chunk_.to());
        if (!check.ok()) {
          Finish(check);
          return;
        }
        if (!chunk_.has_header() || chunk_.header().type() != raftlock::v1::MSG_SNAP) {
          Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                              "first snapshot chunk must carry the MSG_SNAP header"));
          return;
        }
        if (chunk_.header().from() != chunk_.from() || chunk_.header().to() != chunk_.to()) {
          Finish(grpc::Status(
              grpc::StatusCode::INVALID_ARGUMENT,
              "snapshot header from node " + std::to_string(chunk_.header().from()) + " to node " +
                  std::to_string(chunk_.header().to()) + " does not match the chunk's sender " +
                  std::to_string(chunk_.from()) + " and receiver " + std::to_string(chunk_.to())));
          return;
        }
        if (chunk_.total_size() > kMaxSnapshotBytes) {
          Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                              "snapshot total_size " + std::to_string(chunk_.total_size()) +
                                  " exceeds the limit of " + std::to_string(kMaxSnapshotBytes) +
                                  " bytes"));
          return;
        }
        header_ = chunk_.header();
        total_size_ = chunk_.total_size();
        crc_ = chunk_.crc32();
        // Grows with the data that actually arrives beyond this.
        data_.reserve(std::min<uint64_t>(total_size_, kSnapshotReserveBytes));
        started_ = true;
      }
      if (chunk_.offset() != data_.size() || data_.size() + chunk_.data().size() > total_size_) {
        Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "snapshot chunk at offset " + std::to_string(chunk_.offset()) +
                                " does not follow the " + std::to_string(data_.size()) +
                                " bytes received"));
        return;
      }
      data_.append(chunk_.data());
      chunk_.Clear();
      StartRead(&chunk_);
    }

    void OnDone() override { delete this; }

   private:
    void FinishTransfer() {
      if (!started_ || data_.size() != total_size_) {
        Finish(grpc::Status(grpc::StatusCode::DATA_LOSS, "snapshot stream ended early"));
        return;
      }
      if (Crc32(data_) != crc_) {
        impl_->logger_->warn("refused snapshot from node {}: checksum mismatch", header_.from());
        Finish(grpc::Status(grpc::StatusCode::DATA_LOSS, "snapshot checksum mismatch"));
        return;
      }
      impl_->logger_->info("received snapshot at index {} ({} bytes) from node {}",
                           header_.snapshot().metadata().index(), data_.size(), header_.from());
      header_.mutable_snapshot()->set_data(std::move(data_));
      ack_->set_bytes_received(total_size_);
      std::vector<RaftMessage> messages;
      messages.push_back(std::move(header_));
      impl_->handler_->OnMessages(std::move(messages));
      Finish(grpc::Status::OK);
    }

    Impl* const impl_;
    SnapshotAck* const ack_;
    SnapshotChunk chunk_;
    bool started_ = false;
    RaftMessage header_;
    uint64_t total_size_ = 0;
    uint32_t crc_ = 0;
    std::string data_;
  };

  grpc::ServerReadReactor<SnapshotChunk>* InstallSnapshot(grpc::CallbackServerContext* /*context*/,
                                                          SnapshotAck* ack) override {
    return new SnapshotReader(this, ack);
  }

  // --- Snapshot sending --------------------------------------------------

  // Streams one snapshot on its own thread (snapshots are rare and large; a
  // blocking writer keeps the flow control simple) and reports the outcome.
  void SendSnapshot(RaftMessage message) {
    uint64_t peer = message.to();
    auto it = stubs_.find(peer);
    if (it == stubs_.end()) {
      logger_->warn("dropping snapshot to unknown node {}", peer);
      return;
    }
    auto stub = it->second;
    std::lock_guard<std::mutex> lock(snapshot_mu_);
    if (shut_down_) return;
    // Join the transfers that have ended, so threads do not pile up on a
    // long-lived leader.
    for (auto sender = snapshot_senders_.begin(); sender != snapshot_senders_.end();) {
      if ((*sender)->finished) {
        (*sender)->thread.join();
        sender = snapshot_senders_.erase(sender);
      } else {
        ++sender;
      }
    }
    auto sender = std::make_unique<SnapshotSender>();
    SnapshotSender* const self = sender.get();
    self->context.set_deadline(std::chrono::system_clock::now() + options_.snapshot_timeout);
    self->thread = std::thread([this, self, stub, peer, message = std::move(message)]() mutable {
      bool ok = StreamSnapshot(stub.get(), &self->context, std::move(message));
      handler_->OnSnapshotStatus(peer, ok);
      self->finished = true;
    });
    snapshot_senders_.push_back(std::move(sender));
  }

  // Streams `message`'s snapshot in chunks on `context` (which carries the
  // deadline and can be cancelled from another thread). True once the peer
  // has acknowledged all of it.
  bool StreamSnapshot(raftlock::v1::RaftTransport::Stub* stub, grpc::ClientContext* context,
                      RaftMessage message) {
    const uint64_t peer = message.to();
    std::string data = std::move(*message.mutable_snapshot()->mutable_data());
    message.mutable_snapshot()->clear_data();
    SnapshotAck ack;
    auto writer = stub->InstallSnapshot(context, &ack);
    uint64_t offset = 0;
    bool first = true;
    bool ok = true;
    while (ok && (first || offset < data.size())) {
      SnapshotChunk chunk;
      if (first) {
        chunk.set_cluster_id(options_.cluster_id);
        chunk.set_from(options_.self_id);
        chunk.set_to(peer);
        *chunk.mutable_header() = message;
        chunk.set_total_size(data.size());
        chunk.set_crc32(Crc32(data));
        first = false;
      }
      size_t n = std::min<size_t>(options_.snapshot_chunk_bytes, data.size() - offset);
      chunk.set_offset(offset);
      chunk.set_data(data.substr(offset, n));
      offset += n;
      ok = writer->Write(chunk);
    }
    writer->WritesDone();
    grpc::Status status = writer->Finish();
    if (!status.ok()) {
      logger_->warn("sending snapshot at index {} to node {} failed: {}",
                    message.snapshot().metadata().index(), peer, status.error_message());
      return false;
    }
    logger_->info("sent snapshot at index {} ({} bytes) to node {}",
                  message.snapshot().metadata().index(), data.size(), peer);
    return true;
  }

  const TransportOptions options_;
  TransportHandler* const handler_;
  const std::shared_ptr<spdlog::logger> logger_;
  std::map<uint64_t, std::shared_ptr<raftlock::v1::RaftTransport::Stub>> stubs_;
  std::map<uint64_t, std::unique_ptr<PeerLink>> links_;
  std::atomic<bool> shut_down_{false};
  // One snapshot transfer: its thread, and its call's context, which Shutdown
  // cancels so that it never waits out a transfer's deadline.
  struct SnapshotSender {
    grpc::ClientContext context;
    std::thread thread;
    std::atomic<bool> finished{false};
  };
  std::mutex snapshot_mu_;
  std::list<std::unique_ptr<SnapshotSender>> snapshot_senders_;
};

Transport::Transport(TransportOptions options, TransportHandler* handler,
                     std::shared_ptr<spdlog::logger> logger)
    : impl_(std::make_unique<Impl>(std::move(options), handler, std::move(logger))) {}

Transport::~Transport() { impl_->Shutdown(); }

grpc::Service* Transport::service() { return impl_.get(); }

void Transport::Send(std::vector<RaftMessage> messages) { impl_->Send(std::move(messages)); }

void Transport::Tick() { impl_->Tick(); }

void Transport::Shutdown() { impl_->Shutdown(); }

}  // namespace raftlock::server
