// Leader election for your own services (docs/semantics.md §4).
//
// Election: campaign with a Session's lease; while elected, the leadership has
// a fencing token and the service should do its work only until the session's
// token() is cancelled (lost) or it resigns. Observe: every change in epoch
// order, including "no leader", from a background stream that follows the
// Raft leader and resumes after the last epoch it delivered.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "proto/api.pb.h"
#include "raftlock/client.h"
#include "raftlock/session.h"

namespace raftlock {

// One change seen by an observer.
struct ElectionUpdate {
  enum class Kind {
    kCurrent,     // the state when observing started, or after a gap (skipped = true)
    kElected,     // a new leader
    kProclaimed,  // the same leader, a new value
    kNoLeader,    // the leader resigned or its lease ended
  };
  Kind kind = Kind::kCurrent;
  bool skipped = false;  // kCurrent only: events were missed, this is the state now
  uint64_t epoch = 0;    // the event's epoch (kCurrent: the latest kept epoch)
  bool has_leader = false;
  uint64_t leader_lease_id = 0;
  std::string value;
  uint64_t token = 0;
  v1::EndReason reason = v1::END_REASON_UNSPECIFIED;  // kNoLeader: why
};
const char* ElectionUpdateKindName(ElectionUpdate::Kind kind);

// A running Observe: delivers updates to the callback on its own thread until
// destroyed. Reconnects (with backoff) after stream failures and leader
// changes, resuming after the last delivered epoch, so a gap is reported as
// kCurrent with skipped = true, never silently.
class ElectionObserver {
 public:
  // `callback` runs on the observer's thread, one update at a time; it must
  // not destroy the observer. after_epoch 0: start with the current state.
  // A state report (kCurrent, skipped or not) is not repeated by a reconnect
  // while nothing changed.
  static std::unique_ptr<ElectionObserver> Start(
      std::shared_ptr<Client> client, std::string name,
      std::function<void(const ElectionUpdate&)> callback, uint64_t after_epoch = 0);
  // Stops the stream and joins; the callback never runs after this returns.
  ~ElectionObserver();
  ElectionObserver(const ElectionObserver&) = delete;
  ElectionObserver& operator=(const ElectionObserver&) = delete;

  // The epoch of the last delivered update. Thread-safe.
  uint64_t last_epoch() const { return last_epoch_.load(); }

 private:
  ElectionObserver(std::shared_ptr<Client> client, std::string name,
                   std::function<void(const ElectionUpdate&)> callback, uint64_t after_epoch);
  void Run();

  const std::shared_ptr<Client> client_;
  const std::string name_;
  const std::function<void(const ElectionUpdate&)> callback_;
  std::atomic<uint64_t> last_epoch_;
  // The state of the last update delivered if it was a kCurrent one (no event
  // since); observer thread only.
  std::optional<v1::ElectionInfo> last_state_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  grpc::ClientContext* context_ = nullptr;  // the open stream, for cancellation
  std::thread thread_;
};

// Campaigning for one election name with one session. `session` must outlive
// it. Not thread-safe (one owner), like the lock objects.
class Election {
 public:
  Election(Session& session, std::string name);
  // Resigns if still leading (best effort).
  ~Election();
  Election(const Election&) = delete;
  Election& operator=(const Election&) = delete;

  const std::string& name() const { return name_; }
  // Waits in FIFO order until elected with `value`. OK: elected (token(),
  // epoch()). DEADLINE_EXCEEDED: not elected before `deadline`. Election
  // objects sharing a Session take turns on a name (like lock objects, see
  // mutex.h): another object's Campaign waits until this one stops leading. Returns by
  // `deadline` (like Mutex::Lock, it keeps a tenth back to withdraw a
  // candidacy whose answer was lost).
  absl::Status Campaign(const std::string& value, Deadline deadline);
  // Publishes a new value while leading. FAILED_PRECONDITION (NOT_HELD) when
  // no longer leading.
  absl::Status Proclaim(const std::string& value, Deadline deadline);
  // Steps down (a NO_LEADER event). OK if not leading.
  absl::Status Resign(Deadline deadline);

  // Whether this object believes it leads (false once the session is lost).
  bool leading() const;
  uint64_t token() const { return leading_ ? token_ : 0; }
  // The epoch of this leadership's last change (ELECTED or PROCLAIMED).
  uint64_t epoch() const { return epoch_; }
  // Who leads now (linearizable read).
  absl::StatusOr<v1::ElectionInfo> Leader(Deadline deadline) const;
  // Starts observing this election.
  std::unique_ptr<ElectionObserver> Observe(std::function<void(const ElectionUpdate&)> callback,
                                            uint64_t after_epoch = 0) const;

 private:
  // Called when a campaign's outcome is unknown: withdraws the candidacy or
  // resigns a leadership it may have won, giving up at `deadline`. A
  // leadership of `kept_token` (held before the call; 0: none) is kept.
  void Abandon(const v1::CampaignRequest& request, uint64_t kept_token, Deadline deadline);
  // Campaign's server part, once the name is claimed in the session (as lock
  // objects claim theirs: one election object per session and name at a
  // time); attempts end at `attempts_end`.
  absl::Status CampaignClaimed(const std::string& value, Deadline deadline, Deadline attempts_end);
  // Gives the session's claim on the name up once this object does not lead.
  void ReleaseClaimUnlessLeading();

  Session* const session_;
  const std::string name_;
  bool leading_ = false;
  uint64_t token_ = 0;
  uint64_t epoch_ = 0;
  // The resign of the current leadership whose outcome is unknown: Resign re-sends it.
  std::optional<v1::WriteId> pending_resign_;
};

}  // namespace raftlock
