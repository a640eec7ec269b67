// raftlock::Client: the connection to a raftlock cluster.
//
// A Client knows a list of endpoints (client addresses of replicas). Every call
// goes to the replica it believes leads; a follower's answer (UNAVAILABLE plus
// a LeaderHint in the trailing metadata) redirects it, and connection failures,
// "no leader yet" and attempts that time out are retried with exponential
// backoff and full jitter until the call's deadline. Writes carry a WriteId
// (this client's random id and a fresh sequence per logical operation; retries
// reuse it), so a retried write is applied at most once (docs/semantics.md §5).
//
// Thread-safety: a Client is safe to share between threads (hold it in a
// shared_ptr; Session, Mutex, Election and Cluster keep one).
//
// This is the low-level layer: one method per RPC, request and response as
// the protos in proto/api.proto and proto/cluster.proto. Session, Mutex,
// SharedMutex, Semaphore, Election and Cluster are the convenient layer above.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/client_interceptor.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/api.grpc.pb.h"
#include "proto/cluster.grpc.pb.h"
#include "raftlock/status.h"

namespace raftlock {

struct ClientOptions {
  // host:port of one or more replicas; the leader is found from them.
  std::vector<std::string> endpoints;
  // Longest single attempt of a call that does not wait on the server; an
  // attempt at a paused or partitioned replica gives up after this and the
  // call moves on to another replica.
  std::chrono::milliseconds attempt_timeout{1500};
  // Backoff between attempts: sleep uniform(0, min(max, initial * 2^n)).
  std::chrono::milliseconds initial_backoff{20};
  std::chrono::milliseconds max_backoff{500};
  // While calls are in flight to a replica, its connection is pinged (HTTP/2
  // PING) every ping_interval, and a ping unanswered for ping_timeout closes
  // it: a call parked at a paused or partitioned replica (a waiting Lock or
  // Campaign) then fails over within about ping_interval + ping_timeout
  // instead of at its deadline. ping_interval 0: no pings; otherwise
  // 1 s (kMinPingInterval) to 1 h. ping_timeout: > 0 and at most 1 h; keep it
  // well above network hiccups, since a closed connection cancels the parked
  // wait at a live leader and the retry queues again at the end.
  std::chrono::milliseconds ping_interval{2000};
  std::chrono::milliseconds ping_timeout{4000};
  // 0: a random nonzero id (the normal case). Set only to resume a known identity.
  uint64_t client_id = 0;
  // null: plaintext.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // Optional: the interceptors of each replica's channel (tracing, metrics,
  // fault injection in tests); called once per replica address.
  std::function<
      std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>()>
      interceptors;
};

// The largest answer a Client accepts (gRPC's default is 4 MiB). At the
// server's default limits the longest answer, a TimeToLive of a lease holding
// 100000 locks with 256-byte names, is about 26 MiB; List pages stay below
// 1 MiB.
inline constexpr int kMaxAnswerBytes = 64 << 20;

// The shortest ClientOptions::ping_interval the SDK allows (replicas accept
// pings every 500 ms, so this keeps a margin), and the longest ping_interval
// or ping_timeout.
inline constexpr std::chrono::milliseconds kMinPingInterval{1000};
inline constexpr std::chrono::milliseconds kMaxPingSetting{3600 * 1000};

// Ends Client calls from another thread (Session::Close ends its keepalive
// so): Cancel() cancels the attempt in flight and cuts a backoff pause short,
// and a call given a cancelled canceller returns CANCELLED without a new
// attempt. One-shot. Thread-safe.
class CallCanceller {
 public:
  void Cancel();
  bool cancelled() const;

 private:
  friend class Client;
  // Registers the attempt's context; false (nothing registered) if cancelled.
  bool Attach(grpc::ClientContext* context);
  // Unregisters it; call before the context is destroyed.
  void Detach();
  // Sleeps up to `pause`; true if cancelled (at once or meanwhile).
  bool SleepFor(std::chrono::milliseconds pause);

  mutable std::mutex mu_;
  std::condition_variable cancelled_cv_;
  grpc::ClientContext* context_ = nullptr;  // guarded by mu_
  bool cancelled_ = false;                  // guarded by mu_
};

class Client {
 public:
  // Validates `options` (INVALID_ARGUMENT naming the option: an empty or
  // malformed endpoint list, a non-positive attempt_timeout, a ping_interval
  // or ping_timeout out of range). Connects lazily: no RPC is made here.
  static absl::StatusOr<std::shared_ptr<Client>> Create(ClientOptions options);

  // Splits "a:1,b:2" into endpoints (spaces ignored).
  static std::vector<std::string> ParseEndpoints(const std::string& text);

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client();

  uint64_t client_id() const { return client_id_; }
  const ClientOptions& options() const { return options_; }
  // A WriteId for a new logical write (next sequence). Thread-safe.
  //
  // The server keeps the results of a client's last `dedup_window` (16)
  // writes. A write whose first attempt reaches the server after 16 newer
  // writes of this client (threads sharing a Client) is answered
  // SEQUENCE_TOO_OLD without being applied; the call then sends it again
  // with a new WriteId, once per fresh write. A *retried* write answered
  // SEQUENCE_TOO_OLD may or may not have applied: the call fails ABORTED
  // (no ErrorReason), an outcome the caller must treat as unknown.
  v1::WriteId NextWrite();
  // The address of the replica believed to lead ("" if unknown).
  std::string leader_address() const;

  // ---- Lease. Requests without a `write` get NextWrite().
  absl::StatusOr<v1::LeaseGrantResponse> LeaseGrant(v1::LeaseGrantRequest request,
                                                    Deadline deadline);
  // `canceller` (optional) can end the call early (CANCELLED).
  absl::StatusOr<v1::LeaseRevokeResponse> LeaseRevoke(v1::LeaseRevokeRequest request,
                                                      Deadline deadline,
                                                      CallCanceller* canceller = nullptr);
  // One keepalive over a short KeepAlive stream, retried until `deadline`.
  // `sent` (optional) receives the monotonic time the acknowledged attempt was
  // sent: the lease cannot expire before sent + TTL. `canceller` (optional)
  // can end the call early (CANCELLED).
  absl::StatusOr<v1::LeaseKeepAliveResponse> LeaseKeepAlive(
      uint64_t lease_id, Deadline deadline, Clock::time_point* sent = nullptr,
      std::optional<std::chrono::milliseconds> attempt_timeout = std::nullopt,
      CallCanceller* canceller = nullptr);
  absl::StatusOr<v1::LeaseTimeToLiveResponse> LeaseTimeToLive(uint64_t lease_id, Deadline deadline);
  // Every live lease, fetched in pages of `page_size` (0: the server's, 1000;
  // at most 10000), all by `deadline`. Pages are read at different indexes,
  // so a lease may end between pages; leases granted after the first page was
  // read are left out. The header is the last page's.
  absl::StatusOr<v1::LeaseListResponse> LeaseList(Deadline deadline, uint32_t page_size = 0);

  // ---- Lock. Acquire with wait_timeout_ms > 0 waits on the server; the
  // attempt's gRPC deadline is set beyond the wait (bounded by `deadline`).
  // `sent_write` (optional) receives the WriteId the call last sent: the
  // request's, or the one that replaced it (see NextWrite). A retry of a call
  // whose outcome is unknown must re-send that one.
  absl::StatusOr<v1::LockAcquireResponse> LockAcquire(v1::LockAcquireRequest request,
                                                      Deadline deadline,
                                                      v1::WriteId* sent_write = nullptr);
  absl::StatusOr<v1::LockReleaseResponse> LockRelease(v1::LockReleaseRequest request,
                                                      Deadline deadline,
                                                      v1::WriteId* sent_write = nullptr);
  absl::StatusOr<v1::LockDescribeResponse> LockDescribe(const std::string& name, Deadline deadline);
  // Every lock whose name starts with `prefix`, paged as LeaseList.
  absl::StatusOr<v1::LockListResponse> LockList(const std::string& prefix, Deadline deadline,
                                                uint32_t page_size = 0);
  absl::StatusOr<v1::ValidateTokenResponse> ValidateToken(const std::string& name, uint64_t token,
                                                          Deadline deadline);

  // ---- Election.
  // `sent_write`: as for LockAcquire.
  absl::StatusOr<v1::CampaignResponse> Campaign(v1::CampaignRequest request, Deadline deadline,
                                                v1::WriteId* sent_write = nullptr);
  absl::StatusOr<v1::ProclaimResponse> Proclaim(v1::ProclaimRequest request, Deadline deadline);
  absl::StatusOr<v1::ResignResponse> Resign(v1::ResignRequest request, Deadline deadline,
                                            v1::WriteId* sent_write = nullptr);
  absl::StatusOr<v1::LeaderResponse> Leader(const std::string& name, Deadline deadline);
  // One Observe stream on the presumed leader: hands each message to
  // `on_message` (on this thread) until the stream ends, `context` is
  // cancelled (TryCancel from another thread) or `on_message` returns false.
  // Returns the stream's status (OK when on_message stopped it). No retries:
  // ElectionObserver reconnects and resumes. A stream whose deadline passed
  // without a message (a quiet election, or a silent replica) is followed by
  // a Cluster.Status to that replica; `quiet` (optional) is set when it
  // answered, and only a silent replica stops being the presumed leader.
  absl::Status ObserveOnce(grpc::ClientContext* context, const v1::ObserveRequest& request,
                           const std::function<bool(const v1::ObserveResponse&)>& on_message,
                           bool* quiet = nullptr);

  // ---- Cluster. `endpoint` "" asks the presumed leader (or any replica);
  // otherwise exactly that replica, without retries elsewhere.
  absl::StatusOr<v1::StatusResponse> Status(Deadline deadline, const std::string& endpoint = "");
  absl::StatusOr<v1::MembersResponse> Members(Deadline deadline);
  // Completes when `target_id` leads; retried (it is idempotent) until `deadline`.
  absl::StatusOr<v1::TransferLeadershipResponse> TransferLeadership(uint64_t target_id,
                                                                    Deadline deadline);

 private:
  struct Endpoint;
  struct CallOptions {
    bool leader_only = true;  // success means this endpoint leads
    bool waits = false;       // may wait on the server: attempt gets the whole wait
    std::chrono::milliseconds wait{0};
    std::optional<std::chrono::milliseconds> attempt_timeout;
    std::string fixed_endpoint;  // only this endpoint, no redirects
    // The WriteId of the request `rpc` sends (null: not a write); replaced
    // when its first attempt is answered SEQUENCE_TOO_OLD (see NextWrite).
    v1::WriteId* write = nullptr;
    CallCanceller* canceller = nullptr;  // may end the call (CANCELLED)
  };
  using Rpc = std::function<grpc::Status(Endpoint&, grpc::ClientContext*)>;

  explicit Client(ClientOptions options);
  // The retry loop shared by every unary call.
  absl::Status Call(const char* what, const CallOptions& call, Deadline deadline, const Rpc& rpc);
  std::shared_ptr<Endpoint> EndpointFor(const std::string& address);
  // The endpoint for the next attempt: the known leader, else the next in turn.
  std::shared_ptr<Endpoint> PickEndpoint();
  void NoteLeader(const std::string& address);
  void ForgetLeader(const std::string& failed_address);
  std::chrono::milliseconds Backoff(int attempt);
  static CallOptions WriteCall(v1::WriteId* write) {
    CallOptions options;
    options.write = write;
    return options;
  }
  // True the first time it is asked about a sequence NextWrite issued: the
  // write has not been sent before. Later, or for an unknown sequence: false.
  bool TakeUnsent(uint64_t sequence);

  const ClientOptions options_;
  const uint64_t client_id_;
  std::atomic<uint64_t> next_sequence_{1};
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Endpoint>> channels_;
  std::string leader_;
  size_t next_endpoint_ = 0;
  std::mt19937_64 rng_;
  // Sequences issued by NextWrite and not yet sent (the newest kMaxUnsent).
  std::set<uint64_t> unsent_;
};

// Converts a gRPC status (and its trailing metadata's raftlock-reason) to absl.
absl::Status FromGrpc(const grpc::Status& status, const std::string& reason = "");

}  // namespace raftlock
