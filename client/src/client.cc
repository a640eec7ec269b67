#include "raftlock/client.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include "absl/strings/cord.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace raftlock {

namespace {

constexpr char kLeaderHintKey[] = "raftlock-leader-bin";
constexpr char kReasonKey[] = "raftlock-reason";
constexpr char kSequenceTooOld[] = "ERROR_REASON_SEQUENCE_TOO_OLD";
constexpr size_t kMaxUnsent = 4096;

std::chrono::system_clock::time_point ToSystem(Deadline deadline) {
  auto remaining = deadline - Clock::now();
  if (remaining < Clock::duration::zero()) remaining = Clock::duration::zero();
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(remaining);
}

std::string Trailer(const grpc::ClientContext& context, const char* key) {
  const auto& trailers = context.GetServerTrailingMetadata();
  auto it = trailers.find(key);
  if (it == trailers.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

uint64_t RandomClientId() {
  std::random_device device;
  uint64_t id = 0;
  while (id == 0) id = (static_cast<uint64_t>(device()) << 32) ^ device();
  return id;
}

}  // namespace

struct Client::Endpoint {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Lease::Stub> lease;
  std::unique_ptr<v1::Lock::Stub> lock;
  std::unique_ptr<v1::Election::Stub> election;
  std::unique_ptr<v1::Cluster::Stub> cluster;
};

absl::Status FromGrpc(const grpc::Status& status, const std::string& reason) {
  absl::Status out(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  if (!reason.empty()) out = WithReason(std::move(out), reason);
  return out;
}

absl::StatusOr<std::shared_ptr<Client>> Client::Create(ClientOptions options) {
  if (options.endpoints.empty()) {
    return absl::InvalidArgumentError("endpoints: at least one host:port is required");
  }
  for (const auto& endpoint : options.endpoints) {
    auto colon = endpoint.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == endpoint.size()) {
      return absl::InvalidArgumentError("endpoints: '" + endpoint + "' is not host:port");
    }
    const std::string port = endpoint.substr(colon + 1);
    const auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), is_digit) ||
        std::stoi(port) < 1 || std::stoi(port) > 65535) {  // 5 digits: stoi cannot throw
      return absl::InvalidArgumentError("endpoints: '" + endpoint +
                                        "': the port must be a number in [1, 65535]");
    }
  }
  if (options.attempt_timeout <= std::chrono::milliseconds(0)) {
    return absl::InvalidArgumentError("attempt_timeout: must be > 0");
  }
  const auto ms = [](std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; };
  if (options.ping_interval != std::chrono::milliseconds(0) &&
      (options.ping_interval < kMinPingInterval || options.ping_interval > kMaxPingSetting)) {
    return absl::InvalidArgumentError("ping_interval: must be 0 (no pings) or from " +
                                      ms(kMinPingInterval) + " to " + ms(kMaxPingSetting) +
                                      ", got " + ms(options.ping_interval));
  }
  if (options.ping_timeout <= std::chrono::milliseconds(0) ||
      options.ping_timeout > kMaxPingSetting) {
    return absl::InvalidArgumentError("ping_timeout: must be > 0 and at most " +
                                      ms(kMaxPingSetting) + ", got " + ms(options.ping_timeout));
  }
  if (options.client_id == 0) options.client_id = RandomClientId();
  if (!options.credentials) options.credentials = grpc::InsecureChannelCredentials();
  return std::shared_ptr<Client>(new Client(std::move(options)));
}

std::vector<std::string> Client::ParseEndpoints(const std::string& text) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    std::string endpoint(absl::StripAsciiWhitespace(part));
    if (!endpoint.empty()) out.push_back(endpoint);
  }
  return out;
}

Client::Client(ClientOptions options)
    : options_(std::move(options)), client_id_(options_.client_id), rng_(RandomClientId()) {}

Client::~Client() = default;

v1::WriteId Client::NextWrite() {
  v1::WriteId write;
  write.set_client_id(client_id_);
  write.set_sequence(next_sequence_.fetch_add(1));
  std::lock_guard<std::mutex> lock(mu_);
  unsent_.insert(write.sequence());
  // A WriteId taken and never sent is forgotten eventually; it then only
  // loses the renewal (SEQUENCE_TOO_OLD stays an unknown outcome).
  if (unsent_.size() > kMaxUnsent) unsent_.erase(unsent_.begin());
  return write;
}

bool Client::TakeUnsent(uint64_t sequence) {
  std::lock_guard<std::mutex> lock(mu_);
  return unsent_.erase(sequence) > 0;
}

std::string Client::leader_address() const {
  std::lock_guard<std::mutex> lock(mu_);
  return leader_;
}

std::shared_ptr<Client::Endpoint> Client::EndpointFor(const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = channels_[address];
  if (!slot) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    // Answers are bounded by the server's limits, not gRPC's 4 MiB default: a
    // lease holding thousands of locks has a longer TimeToLive answer.
    args.SetMaxReceiveMessageSize(kMaxAnswerBytes);
    if (options_.ping_interval.count() > 0) {
      // Pings only while calls are in flight, and without limit on pings
      // between data frames: a parked wait sends no data.
      args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(options_.ping_interval.count()));
      args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, static_cast<int>(options_.ping_timeout.count()));
      args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
      args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    }
    auto endpoint = std::make_shared<Endpoint>();
    endpoint->address = address;
    endpoint->channel = options_.interceptors
                            ? grpc::experimental::CreateCustomChannelWithInterceptors(
                                  address, options_.credentials, args, options_.interceptors())
                            : grpc::CreateCustomChannel(address, options_.credentials, args);
    endpoint->lease = v1::Lease::NewStub(endpoint->channel);
    endpoint->lock = v1::Lock::NewStub(endpoint->channel);
    endpoint->election = v1::Election::NewStub(endpoint->channel);
    endpoint->cluster = v1::Cluster::NewStub(endpoint->channel);
    slot = std::move(endpoint);
  }
  return slot;
}

std::shared_ptr<Client::Endpoint> Client::PickEndpoint() {
  std::string address;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!leader_.empty()) {
      address = leader_;
    } else {
      address = options_.endpoints[next_endpoint_ % options_.endpoints.size()];
      next_endpoint_++;
    }
  }
  return EndpointFor(address);
}

void Client::NoteLeader(const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  leader_ = address;
}

void Client::ForgetLeader(const std::string& failed_address) {
  std::lock_guard<std::mutex> lock(mu_);
  if (leader_ == failed_address) leader_.clear();
}

namespace {

// What a call ended by its CallCanceller returns.
absl::Status Cancelled(const char* what) {
  return absl::CancelledError(std::string(what) + ": cancelled");
}

}  // namespace

void CallCanceller::Cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  cancelled_ = true;
  if (context_ != nullptr) context_->TryCancel();
  cancelled_cv_.notify_all();
}

bool CallCanceller::cancelled() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cancelled_;
}

bool CallCanceller::Attach(grpc::ClientContext* context) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cancelled_) return false;
  context_ = context;
  return true;
}

void CallCanceller::Detach() {
  std::lock_guard<std::mutex> lock(mu_);
  context_ = nullptr;
}

bool CallCanceller::SleepFor(std::chrono::milliseconds pause) {
  std::unique_lock<std::mutex> lock(mu_);
  return cancelled_cv_.wait_for(lock, pause, [this] { return cancelled_; });
}

std::chrono::milliseconds Client::Backoff(int attempt) {
  int64_t cap = options_.initial_backoff.count() << std::min(attempt, 20);
  cap = std::max<int64_t>(1, std::min<int64_t>(cap, options_.max_backoff.count()));
  std::lock_guard<std::mutex> lock(mu_);
  return std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(0, cap)(rng_));
}

absl::Status Client::Call(const char* what, const CallOptions& call, Deadline deadline,
                          const Rpc& rpc) {
  absl::Status last;
  int redirects = 0;
  // No attempt of this write was sent before: the server cannot have applied it.
  bool unsent = call.write != nullptr && TakeUnsent(call.write->sequence());
  for (int attempt = 0;; ++attempt) {
    const Deadline now = Clock::now();
    if (now >= deadline) {
      if (last.ok()) return absl::DeadlineExceededError(std::string(what) + ": deadline passed");
      return absl::Status(last.code(), std::string(what) + ": gave up at the deadline after " +
                                           std::to_string(attempt) + " attempt(s); last error: " +
                                           std::string(last.message()));
    }
    std::shared_ptr<Endpoint> endpoint =
        call.fixed_endpoint.empty() ? PickEndpoint() : EndpointFor(call.fixed_endpoint);
    const auto attempt_timeout = call.attempt_timeout.value_or(options_.attempt_timeout);
    Deadline attempt_deadline = std::min(deadline, now + attempt_timeout);
    if (call.waits) attempt_deadline = std::min(deadline, now + call.wait + attempt_timeout);
    grpc::ClientContext context;
    context.set_deadline(ToSystem(attempt_deadline));
    if (call.canceller != nullptr && !call.canceller->Attach(&context)) return Cancelled(what);
    grpc::Status status = rpc(*endpoint, &context);
    if (call.canceller != nullptr) {
      call.canceller->Detach();
      if (!status.ok() && call.canceller->cancelled()) return Cancelled(what);
    }
    if (status.ok()) {
      if (call.leader_only && call.fixed_endpoint.empty()) NoteLeader(endpoint->address);
      return absl::OkStatus();
    }
    const std::string reason = Trailer(context, kReasonKey);
    if (reason == kSequenceTooOld && call.write != nullptr) {
      if (unsent) {  // refused unapplied: 16 newer writes of this client came first
        *call.write = NextWrite();
        unsent = TakeUnsent(call.write->sequence());
        continue;
      }
      absl::Status forgotten =
          absl::AbortedError(std::string(what) +
                             ": the server no longer remembers whether this retried write "
                             "applied (SEQUENCE_TOO_OLD): its outcome is unknown");
      forgotten.SetPayload(kWriteForgottenPayloadKey, absl::Cord("SEQUENCE_TOO_OLD"));
      return forgotten;
    }
    unsent = false;  // from here on this attempt may have applied
    if (!reason.empty()) return FromGrpc(status, reason);  // the state machine's answer
    if (!call.fixed_endpoint.empty()) return FromGrpc(status);

    bool retry = false;
    bool immediate = false;
    const std::string hint_bytes = Trailer(context, kLeaderHintKey);
    v1::LeaderHint hint;
    const auto code = status.error_code();
    if (!hint_bytes.empty() && hint.ParseFromString(hint_bytes)) {
      retry = code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::ABORTED ||
              code == grpc::StatusCode::FAILED_PRECONDITION ||
              code == grpc::StatusCode::DEADLINE_EXCEEDED;
      if (hint.leader_id() != 0 && !hint.leader_address().empty() &&
          hint.leader_address() != endpoint->address) {
        NoteLeader(hint.leader_address());
        immediate = redirects++ < 3;
      } else {
        ForgetLeader(endpoint->address);
      }
    } else if (code == grpc::StatusCode::UNAVAILABLE) {
      retry = true;
      ForgetLeader(endpoint->address);
    } else if (code == grpc::StatusCode::CANCELLED) {
      // Never our own doing here (no context is cancelled): a replica that
      // is shutting down cancels the calls it has not answered.
      retry = true;
      ForgetLeader(endpoint->address);
    } else if (code == grpc::StatusCode::DEADLINE_EXCEEDED && Clock::now() < deadline) {
      retry = true;  // only this attempt timed out (a paused or partitioned replica)
      ForgetLeader(endpoint->address);
    }
    if (!retry) return FromGrpc(status);
    last = FromGrpc(status);
    SPDLOG_DEBUG("raftlock: {} attempt {} at {} failed: {}", what, attempt, endpoint->address,
                 status.error_message());
    if (!immediate) {
      auto pause = Backoff(attempt);
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      pause = std::max(std::chrono::milliseconds(0), std::min(pause, left));
      if (call.canceller != nullptr) {
        if (call.canceller->SleepFor(pause)) return Cancelled(what);
      } else {
        std::this_thread::sleep_for(pause);
      }
    }
  }
}

// ---------------------------------------------------------------- Lease

absl::StatusOr<v1::LeaseGrantResponse> Client::LeaseGrant(v1::LeaseGrantRequest request,
                                                          Deadline deadline) {
  if (!request.has_write()) *request.mutable_write() = NextWrite();
  v1::LeaseGrantResponse response;
  absl::Status status = Call(
      "Lease.Grant", WriteCall(request.mutable_write()), deadline,
      [&](Endpoint& e, grpc::ClientContext* c) { return e.lease->Grant(c, request, &response); });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<v1::LeaseRevokeResponse> Client::LeaseRevoke(v1::LeaseRevokeRequest request,
                                                            Deadline deadline,
                                                            CallCanceller* canceller) {
  if (!request.has_write()) *request.mutable_write() = NextWrite();
  v1::LeaseRevokeResponse response;
  CallOptions options = WriteCall(request.mutable_write());
  options.canceller = canceller;
  absl::Status status = Call(
      "Lease.Revoke", options, deadline,
      [&](Endpoint& e, grpc::ClientContext* c) { return e.lease->Revoke(c, request, &response); });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<v1::LeaseKeepAliveResponse> Client::LeaseKeepAlive(
    uint64_t lease_id, Deadline deadline, Clock::time_point* sent,
    std::optional<std::chrono::milliseconds> attempt_timeout, CallCanceller* canceller) {
  v1::LeaseKeepAliveRequest request;
  request.set_lease_id(lease_id);
  v1::LeaseKeepAliveResponse response;
  CallOptions options;
  options.attempt_timeout = attempt_timeout;
  options.canceller = canceller;
  absl::Status status =
      Call("Lease.KeepAlive", options, deadline, [&](Endpoint& e, grpc::ClientContext* c) {
        auto stream = e.lease->KeepAlive(c);
        if (sent) *sent = Clock::now();
        if (!stream->Write(request)) return stream->Finish();
        stream->WritesDone();
        const bool got = stream->Read(&response);
        grpc::Status finished = stream->Finish();
        if (got && finished.ok()) return grpc::Status::OK;
        if (finished.ok())
          return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no keepalive answer");
        return finished;
      });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<v1::LeaseTimeToLiveResponse> Client::LeaseTimeToLive(uint64_t lease_id,
                                                                    Deadline deadline) {
  v1::LeaseTimeToLiveRequest request;
  request.set_lease_id(lease_id);
  v1::LeaseTimeToLiveResponse response;
  absl::Status status =
      Call("Lease.TimeToLive", {}, deadline, [&](Endpoint& e, grpc::ClientContext* c) {
        return e.lease->TimeToLive(c, request, &response);
      });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<v1::LeaseListResponse> Client::LeaseList(Deadline deadline, uint32_t page_size) {
  v1::LeaseListRequest request;
  request.set_limit(page_size);
  v1::LeaseListResponse all;
  // A lease id is the log index of its grant, so leases granted after the
  // first page was read have ids above its applied index. They are left out:
  // the list ends even while grants go on.
  uint64_t newest_id = 0;
  while (true) {
    v1::LeaseListResponse page;
    absl::Status status =
        Call("Lease.List", {}, deadline,
             [&](Endpoint& e, grpc::ClientContext* c) { return e.lease->List(c, request, &page); });
    if (!status.ok()) return status;
    if (newest_id == 0) newest_id = page.header().applied_index();
    *all.mutable_header() = page.header();
    for (auto& lease : *page.mutable_leases()) {
      if (lease.lease_id() > newest_id) return all;
      *all.add_leases() = std::move(lease);
    }
    if (!page.more() || page.leases().empty()) return all;
    request.set_after_id(all.leases(all.leases_size() - 1).lease_id());
  }
}

// ---------------------------------------------------------------- Lock

absl::StatusOr<v1::LockAcquireResponse> Client::LockAcquire(v1::LockAcquireRequest request,
                                                            Deadline deadline,
                                                            v1::WriteId* sent_write) {
  if (!request.has_write()) *request.mutable_write() = NextWrite();
  v1::LockAcquireResponse response;
  CallOptions options = WriteCall(request.mutable_write());
  options.waits = request.wait_timeout_ms() > 0;
  options.wait = std::chrono::milliseconds(request.wait_timeout_ms());
  absl::Status status = Call(
      "Lock.Acquire", options, deadline,
      [&](Endpoint& e, grpc::ClientContext* c) { return e.lock->Acquire(c, request, &response); });
  if (sent_write != nullptr) *sent_write = request.write();
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<v1::LockReleaseResponse> Client::LockRelease(v1::LockReleaseRequest request,
                                                            Deadline deadline,
                                                            v1::WriteId* sent_write) {
  if (!request.has_write()) *request.mutable_write() = NextWrite();
  v1::LockReleaseResponse response;
  absl::Status status = Call(
      "Lock.Release", WriteCall(request.mutable_write()), deadline,
      [&](Endpoint& e, grpc::ClientContext* c) { return e.lock->Release(c, request, &response); });
  if (sent_write != nullptr) *sent_write = request.write();
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<v1::LockDescribeResponse> Client::LockDescribe(const std::string& name,
                                                              Deadline deadline) {
  v1::LockDescribeRequest request;
  request.set_name(name);
  v1::LockDescribeResponse response;
  absl::Status status = Call(
      "Lock.Describe", {}, deadline,
      [&](Endpoint& e, grpc::ClientContext* c) { return e.lock->Describe(c, request, &response); });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<v1::LockListResponse> Client::LockList(const std::string& prefix, Deadline deadline,
                                                      uint32_t page_size) {
  v1::LockListRequest request;
  request.set_prefix(prefix);
  request.set_limit(page_size);
  v1::LockListResponse all;
  while (true) {
    v1::LockListResponse page;
    absl::Status status = Call("Lock.List", {}, deadline, [&](Endpoint& e, grpc::ClientContext* c) {
      return e.lock->List(c, request, &page);
    });
    if (!status.ok()) return status;
    *all.mutable_header() = page.header();
    for (auto& lock : *page.mutable_locks()) *all.add_locks() = std::move(lock);
    if (!page.more() || page.locks().empty()) return all;
    request.set_after(all.locks(all.locks_size() - 1).name());
  }
}

absl::StatusOr<v1::ValidateTokenResponse> Client::ValidateToken(const std::string& name,
                                                                uint64_t token, Deadline deadline) {
  v1::ValidateTokenRequest request;
  request.set_name(name);
  request.set_token(token);
  v1::ValidateTokenResponse response;
  absl::Status status =
      Call("Lock.ValidateToken", {}, deadline, [&](Endpoint& e, grpc::ClientContext* c) {
        return e.lock->ValidateToken(c, request, &response);
      });
  if (!status.ok()) return status;
  return response;
}

// ---------------------------------------------------------------- Election

absl::StatusOr<v1::CampaignResponse> Client::Campaign(v1::CampaignRequest request,
                                                      Deadline deadline, v1::WriteId* sent_write) {
  if (!request.has_write()) *request.mutable_write() = NextWrite();
  v1::CampaignResponse response;
  CallOptions options = WriteCall(request.mutable_write());
  options.waits = request.wait_timeout_ms() > 0;
  options.wait = std::chrono::milliseconds(request.wait_timeout_ms());
  absl::Status status =
      Call("Election.Campaign", options, deadline, [&](Endpoint& e, grpc::ClientContext* c) {
        return e.election->Campaign(c, request, &response);
      });
  if (sent_write != nullptr) *sent_write = request.write();
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<v1::ProclaimResponse> Client::Proclaim(v1::ProclaimRequest request,
                                                      Deadline deadline) {
  if (!request.has_write()) *request.mutable_write() = NextWrite();
  v1::ProclaimResponse response;
  absl::Status status = Call("Election.Proclaim", WriteCall(request.mutable_write()), deadline,
                             [&](Endpoint& e, grpc::ClientContext* c) {
                               return e.election->Proclaim(c, request, &response);
                             });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<v1::ResignResponse> Client::Resign(v1::ResignRequest request, Deadline deadline,
                                                  v1::WriteId* sent_write) {
  if (!request.has_write()) *request.mutable_write() = NextWrite();
  v1::ResignResponse response;
  absl::Status status = Call("Election.Resign", WriteCall(request.mutable_write()), deadline,
                             [&](Endpoint& e, grpc::ClientContext* c) {
                               return e.election->Resign(c, request, &response);
                             });
  if (sent_write != nullptr) *sent_write = request.write();
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<v1::LeaderResponse> Client::Leader(const std::string& name, Deadline deadline) {
  v1::LeaderRequest request;
  request.set_name(name);
  v1::LeaderResponse response;
  absl::Status status =
      Call("Election.Leader", {}, deadline, [&](Endpoint& e, grpc::ClientContext* c) {
        return e.election->Leader(c, request, &response);
      });
  if (!status.ok()) return status;
  return response;
}

absl::Status Client::ObserveOnce(grpc::ClientContext* context, const v1::ObserveRequest& request,
                                 const std::function<bool(const v1::ObserveResponse&)>& on_message,
                                 bool* quiet) {
  if (quiet != nullptr) *quiet = false;
  std::shared_ptr<Endpoint> endpoint = PickEndpoint();
  auto reader = endpoint->election->Observe(context, request);
  v1::ObserveResponse message;
  bool stopped = false;
  bool received = false;
  while (reader->Read(&message)) {
    if (!received) NoteLeader(endpoint->address);
    received = true;
    if (!on_message(message)) {
      stopped = true;
      context->TryCancel();
      break;
    }
  }
  grpc::Status status = reader->Finish();
  if (stopped) return absl::OkStatus();
  const std::string hint_bytes = Trailer(*context, kLeaderHintKey);
  v1::LeaderHint hint;
  if (!hint_bytes.empty() && hint.ParseFromString(hint_bytes) && hint.leader_id() != 0 &&
      !hint.leader_address().empty() && hint.leader_address() != endpoint->address) {
    NoteLeader(hint.leader_address());
  } else if (!received && status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    const bool answers = Status(Clock::now() + options_.attempt_timeout, endpoint->address).ok();
    if (quiet != nullptr) *quiet = answers;
    if (!answers) ForgetLeader(endpoint->address);
  } else if (!status.ok() && (!received || status.error_code() == grpc::StatusCode::UNAVAILABLE)) {
    ForgetLeader(endpoint->address);
  }
  if (status.ok()) return absl::UnavailableError("the Observe stream ended");
  return FromGrpc(status, Trailer(*context, kReasonKey));
}

// ---------------------------------------------------------------- Cluster

absl::StatusOr<v1::StatusResponse> Client::Status(Deadline deadline, const std::string& endpoint) {
  v1::StatusRequest request;
  v1::StatusResponse response;
  CallOptions options;
  options.leader_only = false;
  options.fixed_endpoint = endpoint;
  absl::Status status =
      Call("Cluster.Status", options, deadline, [&](Endpoint& e, grpc::ClientContext* c) {
        return e.cluster->Status(c, request, &response);
      });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<v1::MembersResponse> Client::Members(Deadline deadline) {
  v1::MembersRequest request;
  v1::MembersResponse response;
  CallOptions options;
  options.leader_only = false;
  absl::Status status =
      Call("Cluster.Members", options, deadline, [&](Endpoint& e, grpc::ClientContext* c) {
        return e.cluster->Members(c, request, &response);
      });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<v1::TransferLeadershipResponse> Client::TransferLeadership(uint64_t target_id,
                                                                          Deadline deadline) {
  v1::TransferLeadershipRequest request;
  request.set_target_id(target_id);
  v1::TransferLeadershipResponse response;
  CallOptions options;
  options.leader_only = false;  // success means the target leads, not this replica
  options.waits = true;
  options.wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  absl::Status status = Call("Cluster.TransferLeadership", options, deadline,
                             [&](Endpoint& e, grpc::ClientContext* c) {
                               return e.cluster->TransferLeadership(c, request, &response);
                             });
  if (!status.ok()) return status;
  {
    std::lock_guard<std::mutex> lock(mu_);
    leader_.clear();  // the leader moved; the next call rediscovers it
  }
  return response;
}

}  // namespace raftlock
