// ClientApi: the Lease, Lock, Election and Cluster gRPC services of one
// replica, on gRPC's callback API. No call holds a thread while it waits: a
// waiting Acquire or Campaign is parked in a registry and answered from the
// replica loop when the state machine grants it (or its wait ends); a call
// that is cancelled or passes its deadline withdraws its wait.
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "proto/api.grpc.pb.h"
#include "proto/cluster.grpc.pb.h"
#include "server/api/call.h"
#include "server/node/replica.h"

namespace spdlog {
class logger;
}

namespace raftlock::server {

class LeaseService;
class LockService;
class ElectionService;
class ClusterService;
class ObserveStream;

// A parked Acquire or Campaign waiting for an event. Answered exactly once.
class Waiter {
 public:
  virtual ~Waiter() = default;
  // The lease was granted the lock (token) or elected (token, epoch).
  virtual void Granted(uint64_t token, uint64_t epoch, uint64_t index, int64_t cluster_time_ms) = 0;
  // The wait ended without a grant.
  virtual void Ended(v1::EndReason reason, uint64_t index, int64_t cluster_time_ms) = 0;
  // This replica stops answering while the wait stays queued in the replicated
  // state: answered with `error`, so the client retries its call (same
  // WriteId) on the next leader and is parked there.
  virtual void Interrupted(const CallError& error) = 0;
};

// The Waiter of a parked unary call: answers `call` with a Response whose
// header is filled and whose outcome `fill(response, granted, token, epoch,
// reason)` sets (reason: why not granted, when not).
template <typename Response>
class ParkedCall : public Waiter {
 public:
  using Fill = std::function<void(Response* response, bool granted, uint64_t token, uint64_t epoch,
                                  v1::NotAcquiredReason reason)>;

  ParkedCall(const Replica* replica, std::shared_ptr<UnaryCall<Response>> call, Fill fill)
      : replica_(replica), call_(std::move(call)), fill_(std::move(fill)) {}

  void Granted(uint64_t token, uint64_t epoch, uint64_t index, int64_t now_ms) override {
    Answer(true, token, epoch, v1::NOT_ACQUIRED_REASON_UNSPECIFIED, index, now_ms);
  }
  void Ended(v1::EndReason reason, uint64_t index, int64_t now_ms) override {
    Answer(false, 0, 0, NotAcquiredReasonFor(reason), index, now_ms);
  }
  void Interrupted(const CallError& error) override { call_->Fail(error); }

 private:
  void Answer(bool granted, uint64_t token, uint64_t epoch, v1::NotAcquiredReason reason,
              uint64_t index, int64_t now_ms) {
    Response response;
    FillHeader(*replica_, index, now_ms, false, response.mutable_header());
    fill_(&response, granted, token, epoch, reason);
    call_->Reply(std::move(response));
  }

  const Replica* const replica_;
  const std::shared_ptr<UnaryCall<Response>> call_;
  const Fill fill_;
};

class ClientApi {
 public:
  // `replica` must outlive the api. Registers the event listener on it, so
  // construct before replica->Start().
  ClientApi(Replica* replica, std::shared_ptr<spdlog::logger> logger);
  ~ClientApi();

  // Adds every client service to `builder`.
  void Register(grpc::ServerBuilder& builder);
  // Ends Observe streams and answers parked calls UNAVAILABLE with a leader
  // hint (their waits stay queued; clients retry them on the next leader).
  // Call after the replica has stopped (the answers read its state) and
  // before shutting the server down. The same happens, without ending the
  // api, each time the replica stops leading: it may never apply the entries
  // that answer them (cut off from its peers), while the next leader can.
  void Shutdown();

  Replica& replica() { return *replica_; }
  spdlog::logger& logger() { return *logger_; }

  // Waiters, keyed by (election?, name, lease): every call parked for that
  // one queued wait (a lease waits once per name, but several calls of it, or
  // a retry, may wait for the outcome). Thread-safe.
  void ParkWaiter(bool election, const std::string& name, uint64_t lease,
                  std::shared_ptr<Waiter> waiter);
  // Removes and returns every waiter parked for the wait.
  std::vector<std::shared_ptr<Waiter>> TakeWaiters(bool election, const std::string& name,
                                                   uint64_t lease);
  // Parks `call` (a queued Acquire or Campaign) until the state machine
  // grants or ends its wait, then answers it as ParkedCall does with `fill`.
  // If the call is cancelled or its deadline passes first, it is unparked
  // (WithdrawWait).
  template <typename Response>
  void ParkUntilAnswered(bool election, const std::string& name, uint64_t lease,
                         const std::shared_ptr<UnaryCall<Response>>& call,
                         typename ParkedCall<Response>::Fill fill) {
    auto waiter = std::make_shared<ParkedCall<Response>>(replica_, call, std::move(fill));
    std::weak_ptr<Waiter> which = waiter;
    ParkWaiter(election, name, lease, std::move(waiter));
    // Runs at once if the call was cancelled before this point.
    call->SetOnCancel(
        [this, election, name, lease, which] { WithdrawWait(election, name, lease, which); });
  }
  // If `which` is still parked for the wait of (election?, name, lease):
  // unparks it and, when no other call waits for that wait, proposes its
  // withdrawal (LockCancelWait, or a Resign with token 0).
  void WithdrawWait(bool election, const std::string& name, uint64_t lease,
                    const std::weak_ptr<Waiter>& which);

  // Observe streams of an election name. Thread-safe.
  void AddObserver(const std::string& name, ObserveStream* stream);
  void RemoveObserver(const std::string& name, ObserveStream* stream);

 private:
  // Runs on the replica loop for every applied entry with events.
  void OnEvents(uint64_t index, const std::vector<v1::LockEvent>& events);
  // Answers every parked call and ends every Observe stream UNAVAILABLE,
  // saying `why` (and the leader hint, for parked calls). Thread-safe.
  void InterruptAll(const std::string& why);

  Replica* const replica_;
  const std::shared_ptr<spdlog::logger> logger_;
  std::unique_ptr<LeaseService> lease_;
  std::unique_ptr<LockService> lock_;
  std::unique_ptr<ElectionService> election_;
  std::unique_ptr<ClusterService> cluster_;

  std::mutex mu_;
  using WaitKey = std::tuple<bool, std::string, uint64_t>;  // (election?, name, lease)
  std::map<WaitKey, std::vector<std::shared_ptr<Waiter>>> waiters_;
  std::map<std::string, std::set<ObserveStream*>> observers_;
  bool shutdown_ = false;
};

}  // namespace raftlock::server
