// raftlock-bench: throughput, latency and failover gaps of a raftlock cluster.
//
//   raftlock-bench --local 3 --workload uncontended --clients 64 --duration 10s
//   raftlock-bench --endpoints 127.0.0.1:9001,... --workload contended --clients 16
//   raftlock-bench --local 3 --workload failover --kills 10
//
// Workloads:
//   uncontended  each client its own lock: acquire, then release
//   contended    every client on one lock (waiting acquire); counts handoffs
//                and checks exclusivity with a holder count and fencing tokens
//   leases       grant, keepalive, revoke
//   failover     uncontended load while the leader process is SIGKILLed every
//                --kill-every (local cluster only); reports the longest gap
//                without a successful acquire around each kill
//   transfer     uncontended load while leadership is transferred round-robin
//
// Clients are asynchronous (gRPC callback API): each keeps one operation in
// flight, so --clients is the number of concurrent operations.
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "proto/api.grpc.pb.h"
#include "proto/cluster.grpc.pb.h"
#include "tests/integration/process_cluster.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
namespace v1 = raftlock::v1;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Latency samples of one operation kind.
struct Samples {
  std::vector<double> ms;
  uint64_t errors = 0;
  void Merge(const Samples& other) {
    ms.insert(ms.end(), other.ms.begin(), other.ms.end());
    errors += other.errors;
  }
  double Percentile(double p) const {
    if (ms.empty()) return 0;
    std::vector<double> sorted = ms;
    size_t k = std::min(sorted.size() - 1, static_cast<size_t>(p * (sorted.size() - 1) + 0.5));
    std::nth_element(sorted.begin(), sorted.begin() + k, sorted.end());
    return sorted[k];
  }
  double Max() const { return ms.empty() ? 0 : *std::max_element(ms.begin(), ms.end()); }
};

// Where the leader is; shared by every client, updated from redirect hints.
class LeaderTracker {
 public:
  explicit LeaderTracker(std::vector<std::string> endpoints) : endpoints_(std::move(endpoints)) {
    for (const auto& e : endpoints_) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 200);
      channels_[e] = grpc::CreateCustomChannel(e, grpc::InsecureChannelCredentials(), args);
    }
    current_ = endpoints_.front();
  }

  std::shared_ptr<grpc::Channel> Channel() {
    std::lock_guard<std::mutex> lock(mu_);
    return channels_[current_];
  }

  // After UNAVAILABLE: follow the hint, or move to the next endpoint.
  void Redirect(const grpc::ClientContext& context) {
    auto trailers = context.GetServerTrailingMetadata();
    auto it = trailers.find("raftlock-leader-bin");
    std::lock_guard<std::mutex> lock(mu_);
    if (it != trailers.end()) {
      v1::LeaderHint hint;
      if (hint.ParseFromString(std::string(it->second.data(), it->second.size())) &&
          channels_.count(hint.leader_address())) {
        current_ = hint.leader_address();
        return;
      }
    }
    auto pos = std::find(endpoints_.begin(), endpoints_.end(), current_);
    current_ = endpoints_[(pos - endpoints_.begin() + 1) % endpoints_.size()];
  }

  // Finds the leader by asking every endpoint (startup).
  bool Discover(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (auto found = AskForLeader()) {
        std::lock_guard<std::mutex> lock(mu_);
        current_ = found->first;
        return true;
      }
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  // The id of the replica that says it leads (0: none answered so).
  uint64_t LeaderId() {
    auto found = AskForLeader();
    return found ? found->second : 0;
  }

  const std::vector<std::string>& endpoints() const { return endpoints_; }

 private:
  // Asks each endpoint's Status (500 ms each); the first that leads, as
  // (endpoint, node id).
  std::optional<std::pair<std::string, uint64_t>> AskForLeader() {
    for (const auto& e : endpoints_) {
      auto stub = v1::Cluster::NewStub(channels_[e]);
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + 500ms);
      v1::StatusResponse status;
      if (stub->Status(&context, v1::StatusRequest(), &status).ok() &&
          status.role() == v1::ROLE_LEADER) {
        return std::make_pair(e, status.node_id());
      }
    }
    return std::nullopt;
  }

  std::vector<std::string> endpoints_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;
  std::mutex mu_;
  std::string current_;
};

// Runs deferred retries on its own thread, so that no gRPC callback thread
// ever sleeps through a backoff (that stalled every other client's
// completions and added ~200 ms to each measured failover).
class RetryTimer {
 public:
  RetryTimer() : thread_([this] { Run(); }) {}
  ~RetryTimer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  // Runs `fn` on the timer thread after `delay`. `fn` must not block.
  void After(std::chrono::milliseconds delay, std::function<void()> fn) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      due_.emplace(Clock::now() + delay, std::move(fn));
    }
    cv_.notify_all();
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      if (due_.empty()) {
        cv_.wait(lock);
        continue;
      }
      auto first = due_.begin();
      if (Clock::now() < first->first) {
        cv_.wait_until(lock, first->first);
        continue;
      }
      std::function<void()> fn = std::move(first->second);
      due_.erase(first);
      lock.unlock();
      fn();
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::multimap<Clock::time_point, std::function<void()>> due_;
  bool stop_ = false;
  std::thread thread_;
};

struct Shared {
  LeaderTracker* leader = nullptr;
  RetryTimer* retry = nullptr;
  std::atomic<bool> stop{false};
  // Contended workload: exclusivity checks.
  std::atomic<int> holders{0};
  std::atomic<uint64_t> violations{0};
  std::mutex fence_mu;
  uint64_t highest_token = 0;
  // Successful acquires, as (time) for gap analysis.
  std::mutex success_mu;
  std::vector<Clock::time_point> successes;
  bool record_successes = false;
  std::atomic<int> active{0};
  std::mutex done_mu;
  std::condition_variable done_cv;
};

enum class Workload { kUncontended, kContended, kLeases };

// One asynchronous client: a small state machine with one call in flight.
class BenchClient {
 public:
  BenchClient(Shared* shared, Workload workload, int index)
      : shared_(shared),
        workload_(workload),
        index_(index),
        lock_name_(workload == Workload::kContended ? "bench/contended"
                                                    : "bench/lock-" + std::to_string(index)) {}

  void Start() {
    shared_->active++;
    GrantLease(workload_ == Workload::kLeases ? Step::kLeaseCycleGrant : Step::kSetupLease);
  }

  Samples acquire, release, grant, keepalive, revoke;
  uint64_t cycles = 0;

 private:
  enum class Step { kSetupLease, kLeaseCycleGrant };

  template <typename Response>
  struct Call {
    grpc::ClientContext context;
    Response response;
    Clock::time_point start = Clock::now();
  };

  void Finish() {
    if (--shared_->active == 0) {
      std::lock_guard<std::mutex> lock(shared_->done_mu);
      shared_->done_cv.notify_all();
    }
  }

  // After a failed call: follows the redirect hint and returns true when the
  // error is worth retrying (UNAVAILABLE, DEADLINE_EXCEEDED).
  bool Retryable(const grpc::Status& status, const grpc::ClientContext& context) {
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
        status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      shared_->leader->Redirect(context);
      return true;
    }
    return false;
  }
  // Runs `next` after a short jittered backoff, off the gRPC thread.
  void Backoff(std::function<void()> next) {
    shared_->retry->After(std::chrono::milliseconds(5 + rng_() % 20), std::move(next));
  }

  void GrantLease(Step step) {
    if (shared_->stop) return Finish();
    auto call = std::make_shared<Call<v1::LeaseGrantResponse>>();
    call->context.set_deadline(std::chrono::system_clock::now() + 2s);
    v1::LeaseGrantRequest request;
    request.set_ttl_ms(step == Step::kSetupLease ? 60000 : 5000);
    v1::Lease::NewStub(shared_->leader->Channel())
        ->async()
        ->Grant(&call->context, &request, &call->response, [this, call, step](grpc::Status s) {
          if (!s.ok()) {
            grant.errors++;
            Retryable(s, call->context);
            return Backoff([this, step] { GrantLease(step); });
          }
          lease_ = call->response.lease_id();
          if (step == Step::kLeaseCycleGrant) {
            grant.ms.push_back(Ms(Clock::now() - call->start));
            return KeepAlive();
          }
          Acquire();
        });
  }

  void Acquire() {
    if (shared_->stop) return Finish();
    auto call = std::make_shared<Call<v1::LockAcquireResponse>>();
    const bool contended = workload_ == Workload::kContended;
    call->context.set_deadline(std::chrono::system_clock::now() + (contended ? 12s : 2s));
    v1::LockAcquireRequest request;
    request.mutable_write()->set_client_id(client_id_);
    request.mutable_write()->set_sequence(++sequence_);
    request.set_name(lock_name_);
    request.set_lease_id(lease_);
    request.set_wait_timeout_ms(contended ? 10000 : 0);
    pending_acquire_ = request;
    SendAcquire(call);
  }

  void SendAcquire(std::shared_ptr<Call<v1::LockAcquireResponse>> call) {
    v1::Lock::NewStub(shared_->leader->Channel())
        ->async()
        ->Acquire(&call->context, &pending_acquire_, &call->response, [this, call](grpc::Status s) {
          if (!s.ok() || !call->response.acquired()) {
            acquire.errors++;
            if (shared_->stop) return Finish();
            // Retry with the same sequence: exactly-once.
            auto retry = std::make_shared<Call<v1::LockAcquireResponse>>();
            retry->start = call->start;
            retry->context.set_deadline(std::chrono::system_clock::now() + 12s);
            if (!s.ok()) {
              Retryable(s, call->context);
              return Backoff([this, retry] { SendAcquire(retry); });
            }
            return SendAcquire(retry);
          }
          auto now = Clock::now();
          acquire.ms.push_back(Ms(now - call->start));
          if (shared_->record_successes) {
            std::lock_guard<std::mutex> lock(shared_->success_mu);
            shared_->successes.push_back(now);
          }
          if (workload_ == Workload::kContended) {
            if (shared_->holders.fetch_add(1) != 0) shared_->violations++;
            std::lock_guard<std::mutex> lock(shared_->fence_mu);
            if (call->response.token() <= shared_->highest_token) shared_->violations++;
            shared_->highest_token = call->response.token();
          }
          Release(call->response.token());
        });
  }

  void Release(uint64_t token) {
    if (workload_ == Workload::kContended) shared_->holders.fetch_sub(1);
    auto call = std::make_shared<Call<v1::LockReleaseResponse>>();
    call->context.set_deadline(std::chrono::system_clock::now() + 2s);
    pending_release_.Clear();
    pending_release_.mutable_write()->set_client_id(client_id_);
    pending_release_.mutable_write()->set_sequence(++sequence_);
    pending_release_.set_name(lock_name_);
    pending_release_.set_lease_id(lease_);
    pending_release_.set_token(token);
    SendRelease(call);
  }

  void SendRelease(std::shared_ptr<Call<v1::LockReleaseResponse>> call) {
    v1::Lock::NewStub(shared_->leader->Channel())
        ->async()
        ->Release(&call->context, &pending_release_, &call->response, [this, call](grpc::Status s) {
          if (!s.ok()) {
            release.errors++;
            if (Retryable(s, call->context) && !shared_->stop) {
              auto retry = std::make_shared<Call<v1::LockReleaseResponse>>();
              retry->start = call->start;
              retry->context.set_deadline(std::chrono::system_clock::now() + 2s);
              return Backoff([this, retry] { SendRelease(retry); });
            }
          } else {
            release.ms.push_back(Ms(Clock::now() - call->start));
            cycles++;
          }
          Acquire();
        });
  }

  // One keepalive over a short bidi stream (request, response, done).
  class KeepAliveCall
      : public grpc::ClientBidiReactor<v1::LeaseKeepAliveRequest, v1::LeaseKeepAliveResponse> {
   public:
    KeepAliveCall(BenchClient* client, uint64_t lease) : client_(client) {
      request_.set_lease_id(lease);
      context_.set_deadline(std::chrono::system_clock::now() + 2s);
      v1::Lease::NewStub(client->shared_->leader->Channel())->async()->KeepAlive(&context_, this);
      StartWrite(&request_);
      StartRead(&response_);
      StartCall();
    }
    void OnWriteDone(bool ok) override {
      if (ok) StartWritesDone();
    }
    void OnReadDone(bool ok) override { got_ = ok; }
    void OnDone(const grpc::Status& status) override {
      client_->KeepAliveDone(status.ok() && got_, start_);
      delete this;
    }

   private:
    BenchClient* client_;
    grpc::ClientContext context_;
    v1::LeaseKeepAliveRequest request_;
    v1::LeaseKeepAliveResponse response_;
    bool got_ = false;
    Clock::time_point start_ = Clock::now();
  };

  void KeepAlive() { new KeepAliveCall(this, lease_); }

  void KeepAliveDone(bool ok, Clock::time_point start) {
    if (ok) {
      keepalive.ms.push_back(Ms(Clock::now() - start));
    } else {
      keepalive.errors++;
    }
    Revoke();
  }

  void Revoke() {
    auto call = std::make_shared<Call<v1::LeaseRevokeResponse>>();
    call->context.set_deadline(std::chrono::system_clock::now() + 2s);
    v1::LeaseRevokeRequest request;
    request.set_lease_id(lease_);
    v1::Lease::NewStub(shared_->leader->Channel())
        ->async()
        ->Revoke(&call->context, &request, &call->response, [this, call](grpc::Status s) {
          if (!s.ok()) {
            revoke.errors++;
            Retryable(s, call->context);
            return Backoff([this] { GrantLease(Step::kLeaseCycleGrant); });
          }
          revoke.ms.push_back(Ms(Clock::now() - call->start));
          cycles++;
          GrantLease(Step::kLeaseCycleGrant);
        });
  }

  Shared* const shared_;
  const Workload workload_;
  const int index_;
  const std::string lock_name_;
  std::mt19937_64 rng_{std::random_device{}()};
  const uint64_t client_id_ = (rng_() | 1);
  uint64_t sequence_ = 0;
  uint64_t lease_ = 0;
  v1::LockAcquireRequest pending_acquire_;
  v1::LockReleaseRequest pending_release_;
};

struct Report {
  std::string workload;
  int clients = 0;
  double seconds = 0;
  uint64_t cycles = 0;
  std::map<std::string, Samples> ops;
  uint64_t violations = 0;
  double longest_gap_ms = 0;
  std::vector<double> event_gaps_ms;  // per kill / transfer
  std::vector<double> transfer_rpc_ms;
  int leader_changes = 0;
};

void PrintReport(const Report& r, bool json) {
  const double rate = r.seconds > 0 ? r.cycles / r.seconds : 0;
  if (json) {
    std::ostringstream out;
    out << "{\"workload\":\"" << r.workload << "\",\"clients\":" << r.clients
        << ",\"seconds\":" << r.seconds << ",\"cycles\":" << r.cycles
        << ",\"cycles_per_second\":" << rate << ",\"violations\":" << r.violations
        << ",\"leader_changes\":" << r.leader_changes << ",\"longest_gap_ms\":" << r.longest_gap_ms
        << ",\"event_gaps_ms\":[";
    for (size_t i = 0; i < r.event_gaps_ms.size(); ++i) out << (i ? "," : "") << r.event_gaps_ms[i];
    out << "],\"transfer_rpc_ms\":[";
    for (size_t i = 0; i < r.transfer_rpc_ms.size(); ++i) {
      out << (i ? "," : "") << r.transfer_rpc_ms[i];
    }
    out << "],\"ops\":{";
    bool first = true;
    for (const auto& [name, s] : r.ops) {
      if (s.ms.empty() && s.errors == 0) continue;
      out << (first ? "" : ",") << "\"" << name << "\":{\"count\":" << s.ms.size()
          << ",\"errors\":" << s.errors << ",\"p50_ms\":" << s.Percentile(0.5)
          << ",\"p90_ms\":" << s.Percentile(0.9) << ",\"p99_ms\":" << s.Percentile(0.99)
          << ",\"max_ms\":" << s.Max() << "}";
      first = false;
    }
    out << "}}";
    std::cout << out.str() << "\n";
    return;
  }
  std::printf("workload %s, %d clients, %.1f s: %llu cycles, %.0f cycles/s\n", r.workload.c_str(),
              r.clients, r.seconds, static_cast<unsigned long long>(r.cycles), rate);
  std::printf("%-10s %9s %7s %9s %9s %9s %9s\n", "op", "count", "errors", "p50 ms", "p90 ms",
              "p99 ms", "max ms");
  for (const auto& [name, s] : r.ops) {
    if (s.ms.empty() && s.errors == 0) continue;
    std::printf("%-10s %9zu %7llu %9.2f %9.2f %9.2f %9.2f\n", name.c_str(), s.ms.size(),
                static_cast<unsigned long long>(s.errors), s.Percentile(0.5), s.Percentile(0.9),
                s.Percentile(0.99), s.Max());
  }
  if (r.workload == "contended") {
    std::printf("handoffs/s %.0f, exclusivity violations %llu\n", rate,
                static_cast<unsigned long long>(r.violations));
  }
  for (size_t i = 0; i < r.event_gaps_ms.size(); ++i) {
    std::printf("%s %zu: gap without a successful acquire %.0f ms", r.workload.c_str(), i + 1,
                r.event_gaps_ms[i]);
    if (i < r.transfer_rpc_ms.size()) std::printf(", transfer call %.0f ms", r.transfer_rpc_ms[i]);
    std::printf("\n");
  }
  if (!r.event_gaps_ms.empty()) std::printf("longest gap %.0f ms\n", r.longest_gap_ms);
  std::printf("leader changes %d\n", r.leader_changes);
}

}  // namespace

int main(int argc, char** argv) {
  // Debian builds Abseil without NDEBUG: switch off absl::Mutex deadlock
  // detection, which gRPC would otherwise pay for on every lock.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  CLI::App app{"raftlock-bench: throughput, latency and failover gaps of a raftlock cluster"};
  std::string endpoints_flag;
  int local = 0;
  std::string workload = "uncontended";
  int clients = 64;
  double duration_s = 10;
  int kills = 10;
  double kill_every_s = 1.5;
  bool json = false;
  app.add_option("--endpoints", endpoints_flag, "client endpoints host:port,...");
  app.add_option("--local", local, "start a local cluster of this many nodes (3 or 5)");
  app.add_option("--workload", workload, "uncontended, contended, leases, failover, transfer")
      ->check(CLI::IsMember({"uncontended", "contended", "leases", "failover", "transfer"}));
  app.add_option("--clients", clients, "concurrent clients (one operation in flight each)");
  app.add_option("--duration", duration_s, "seconds of load (not for failover/transfer)");
  app.add_option("--kills", kills, "failover/transfer: number of kills or transfers");
  app.add_option("--kill-every", kill_every_s, "failover/transfer: seconds between events");
  app.add_flag("--json", json, "print one JSON object");
  CLI11_PARSE(app, argc, argv);
  if (local == 0 && endpoints_flag.empty()) local = 3;
  if (workload == "failover" && local == 0) {
    std::cerr << "raftlock-bench: --workload failover needs --local (it kills processes)\n";
    return 2;
  }

  std::unique_ptr<raftlock::testing::ProcessCluster> cluster;
  std::vector<std::string> endpoints;
  if (local > 0) {
    cluster = std::make_unique<raftlock::testing::ProcessCluster>(local);
    cluster->StartAll();
    if (cluster->WaitForLeader(10s) == 0) {
      std::cerr << "raftlock-bench: the local cluster elected no leader\n";
      return 1;
    }
    endpoints = cluster->ClientAddresses();
  } else {
    endpoints = absl::StrSplit(endpoints_flag, ',', absl::SkipEmpty());
  }
  LeaderTracker leader(endpoints);
  if (!leader.Discover(10s)) {
    std::cerr << "raftlock-bench: no leader found at " << endpoints_flag << "\n";
    return 1;
  }

  RetryTimer retry_timer;
  Shared shared;
  shared.leader = &leader;
  shared.retry = &retry_timer;
  const bool faults = workload == "failover" || workload == "transfer";
  shared.record_successes = faults;
  Workload kind = workload == "contended" ? Workload::kContended
                  : workload == "leases"  ? Workload::kLeases
                                          : Workload::kUncontended;
  std::vector<std::unique_ptr<BenchClient>> bench_clients;
  for (int i = 0; i < clients; ++i)
    bench_clients.push_back(std::make_unique<BenchClient>(&shared, kind, i));

  // Leader changes are counted by polling Status in the background.
  std::atomic<bool> watching{true};
  std::atomic<int> leader_changes{0};
  std::thread watcher([&] {
    uint64_t last = leader.LeaderId();
    while (watching) {
      std::this_thread::sleep_for(100ms);
      uint64_t now = leader.LeaderId();
      if (now != 0 && last != 0 && now != last) leader_changes++;
      if (now != 0) last = now;
    }
  });

  Report report;
  report.workload = workload;
  report.clients = clients;
  auto start = Clock::now();
  for (auto& c : bench_clients) c->Start();
  std::vector<Clock::time_point> events;
  if (workload == "failover") {
    for (int k = 0; k < kills; ++k) {
      std::this_thread::sleep_for(std::chrono::duration<double>(kill_every_s));
      int victim = cluster->WaitForLeader(5s);
      if (victim == 0) continue;
      cluster->Kill(victim);
      events.push_back(Clock::now());
      std::this_thread::sleep_for(std::chrono::duration<double>(kill_every_s));
      cluster->Start(victim);
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(kill_every_s));
  } else if (workload == "transfer") {
    for (int k = 0; k < kills; ++k) {
      std::this_thread::sleep_for(std::chrono::duration<double>(kill_every_s));
      uint64_t current = leader.LeaderId();
      if (current == 0) continue;
      uint64_t target = current % endpoints.size() + 1;
      auto stub = v1::Cluster::NewStub(
          grpc::CreateChannel(endpoints[current - 1], grpc::InsecureChannelCredentials()));
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + 3s);
      v1::TransferLeadershipRequest request;
      request.set_target_id(target);
      v1::TransferLeadershipResponse response;
      auto t0 = Clock::now();
      events.push_back(t0);
      grpc::Status s = stub->TransferLeadership(&context, request, &response);
      report.transfer_rpc_ms.push_back(s.ok() ? Ms(Clock::now() - t0) : -1);
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(kill_every_s));
  } else {
    std::this_thread::sleep_for(std::chrono::duration<double>(duration_s));
  }
  shared.stop = true;
  report.seconds = Ms(Clock::now() - start) / 1000.0;
  {
    std::unique_lock<std::mutex> lock(shared.done_mu);
    shared.done_cv.wait_for(lock, 15s, [&] { return shared.active.load() == 0; });
  }
  watching = false;
  watcher.join();

  for (auto& c : bench_clients) {
    report.cycles += c->cycles;
    report.ops["acquire"].Merge(c->acquire);
    report.ops["release"].Merge(c->release);
    report.ops["grant"].Merge(c->grant);
    report.ops["keepalive"].Merge(c->keepalive);
    report.ops["revoke"].Merge(c->revoke);
  }
  report.violations = shared.violations;
  report.leader_changes = leader_changes;
  if (faults) {
    std::sort(shared.successes.begin(), shared.successes.end());
    for (auto event : events) {
      // The gap around an event: from the last success before it to the
      // first success after it.
      auto after = std::lower_bound(shared.successes.begin(), shared.successes.end(), event);
      if (after == shared.successes.end()) {
        report.event_gaps_ms.push_back(-1);
        continue;
      }
      Clock::time_point before = after == shared.successes.begin() ? event : *std::prev(after);
      double gap = Ms(*after - before);
      report.event_gaps_ms.push_back(gap);
      report.longest_gap_ms = std::max(report.longest_gap_ms, gap);
    }
  }
  bench_clients.clear();
  PrintReport(report, json);
  return 0;
}
