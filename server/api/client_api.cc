#include "server/api/client_api.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "server/api/services.h"

namespace raftlock::server {

ClientApi::ClientApi(Replica* replica, std::shared_ptr<spdlog::logger> logger)
    : replica_(replica),
      logger_(std::move(logger)),
      lease_(std::make_unique<LeaseService>(this)),
      lock_(std::make_unique<LockService>(this)),
      election_(std::make_unique<ElectionService>(this)),
      cluster_(std::make_unique<ClusterService>(this)) {
  replica_->SetEventListener([this](uint64_t index, const std::vector<v1::LockEvent>& events) {
    OnEvents(index, events);
  });
  replica_->SetLeadershipLostListener([this] { InterruptAll("this replica stopped leading"); });
}

ClientApi::~ClientApi() { Shutdown(); }

void ClientApi::Register(grpc::ServerBuilder& builder) {
  builder.RegisterService(lease_.get());
  builder.RegisterService(lock_.get());
  builder.RegisterService(election_.get());
  builder.RegisterService(cluster_.get());
}

void ClientApi::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutdown_) return;
    shutdown_ = true;
  }
  InterruptAll("the replica is shutting down");
}

void ClientApi::InterruptAll(const std::string& why) {
  std::map<WaitKey, std::vector<std::shared_ptr<Waiter>>> waiters;
  size_t streams = 0;
  // Both carry the leader hint, so clients go straight to the next leader.
  const LeaderInfo leader = replica_->leader();
  const CallError stream_end = ReplicaError(absl::UnavailableError(why), leader);
  {
    std::lock_guard<std::mutex> lock(mu_);
    waiters.swap(waiters_);
    // Ended under mu_: a stream's OnDone unregisters it (under mu_) before
    // deleting it, and gRPC never runs a stream's OnDone inline in Finish.
    for (auto& [name, set] : observers_) {
      for (ObserveStream* stream : set) {
        stream->End(stream_end);
        ++streams;
      }
    }
  }
  if (streams == 0 && waiters.empty()) return;
  size_t calls = 0;
  for (const auto& [key, parked] : waiters) calls += parked.size();
  logger_->info("{}: answering {} parked call(s) and ending {} observe stream(s) UNAVAILABLE", why,
                calls, streams);
  const CallError interrupted =
      ReplicaError(absl::UnavailableError(why + "; the wait is still queued, retry it"), leader);
  for (auto& [key, parked] : waiters) {
    for (auto& waiter : parked) waiter->Interrupted(interrupted);
  }
}

void ClientApi::ParkWaiter(bool election, const std::string& name, uint64_t lease,
                           std::shared_ptr<Waiter> waiter) {
  std::lock_guard<std::mutex> lock(mu_);
  waiters_[{election, name, lease}].push_back(std::move(waiter));
}

std::vector<std::shared_ptr<Waiter>> ClientApi::TakeWaiters(bool election, const std::string& name,
                                                            uint64_t lease) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = waiters_.find({election, name, lease});
  if (it == waiters_.end()) return {};
  auto parked = std::move(it->second);
  waiters_.erase(it);
  return parked;
}

void ClientApi::WithdrawWait(bool election, const std::string& name, uint64_t lease,
                             const std::weak_ptr<Waiter>& which) {
  const std::shared_ptr<Waiter> target = which.lock();
  if (!target) return;  // answered and gone
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = waiters_.find({election, name, lease});
    if (it == waiters_.end()) return;  // already answered
    auto& parked = it->second;
    auto mine = std::find_if(parked.begin(), parked.end(),
                             [&target](const auto& waiter) { return waiter == target; });
    if (mine == parked.end()) return;  // already answered
    parked.erase(mine);
    if (!parked.empty()) return;  // other calls still wait for this wait
    waiters_.erase(it);
  }
  v1::Command withdraw;
  if (election) {
    withdraw.mutable_election_resign()->set_name(name);
    withdraw.mutable_election_resign()->set_lease_id(lease);
    withdraw.mutable_election_resign()->set_token(0);  // the queued candidacy
  } else {
    withdraw.mutable_lock_cancel_wait()->set_name(name);
    withdraw.mutable_lock_cancel_wait()->set_lease_id(lease);
  }
  replica_->Propose(std::move(withdraw), [this, election, name,
                                          lease](absl::StatusOr<lock::ApplyResult> result) {
    if (!result.ok()) {
      logger_->info("could not withdraw the cancelled wait of lease {} for {} '{}': {}", lease,
                    election ? "election" : "lock", name, std::string(result.status().message()));
    }
  });
}

void ClientApi::AddObserver(const std::string& name, ObserveStream* stream) {
  std::lock_guard<std::mutex> lock(mu_);
  observers_[name].insert(stream);
}

void ClientApi::RemoveObserver(const std::string& name, ObserveStream* stream) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = observers_.find(name);
  if (it == observers_.end()) return;
  it->second.erase(stream);
  if (it->second.empty()) observers_.erase(it);
}

void ClientApi::OnEvents(uint64_t index, const std::vector<v1::LockEvent>& events) {
  const int64_t now_ms = replica_->state().cluster_time_ms();
  for (const auto& event : events) {
    switch (event.kind_case()) {
      case v1::LockEvent::kLockGranted: {
        const auto& granted = event.lock_granted();
        if (!granted.from_queue()) break;
        for (auto& waiter : TakeWaiters(false, granted.name(), granted.lease_id())) {
          waiter->Granted(granted.token(), 0, index, now_ms);
        }
        break;
      }
      case v1::LockEvent::kWaitEnded: {
        const auto& ended = event.wait_ended();
        for (auto& waiter : TakeWaiters(ended.election(), ended.name(), ended.lease_id())) {
          waiter->Ended(ended.reason(), index, now_ms);
        }
        break;
      }
      case v1::LockEvent::kElection: {
        const auto& change = event.election();
        if (change.type() == v1::ELECTION_EVENT_ELECTED) {
          for (auto& waiter : TakeWaiters(true, change.name(), change.leader_lease_id())) {
            waiter->Granted(change.token(), change.epoch(), index, now_ms);
          }
        }
        // Observers hold mu_ only to be found; Push never calls back into us.
        std::lock_guard<std::mutex> lock(mu_);
        auto it = observers_.find(change.name());
        if (it == observers_.end()) break;
        v1::ElectionInfo current = replica_->state().Leader(change.name());
        for (ObserveStream* stream : it->second) stream->Push(change, current);
        break;
      }
      default:
        break;
    }
  }
}

}  // namespace raftlock::server
