// Small shared helpers of the lock state machine: result construction and the
// record of changes a lock table reports to its caller.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "proto/lock.pb.h"

namespace raftlock::lock {

// absl / gRPC status codes used in CommandResult.code.
enum Code : int32_t {
  kOk = 0,
  kInvalidArgument = 3,
  kNotFound = 5,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
};

// A cluster time meaning "never".
inline constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

// The status class of an error reason (kOk for ERROR_REASON_NONE).
int32_t CodeOf(v1::ErrorReason reason);

// An error: code derived from reason, message naming the field and the limit.
struct Error {
  v1::ErrorReason reason = v1::ERROR_REASON_NONE;
  std::string message;
  bool ok() const { return reason == v1::ERROR_REASON_NONE; }
};

// Saturating a + b for cluster times (never overflows past kNever).
int64_t AddMs(int64_t a, int64_t b);

// One hold of a lock (or the leadership of an election).
struct Holder {
  uint64_t lease = 0;
  v1::LockMode mode = v1::LOCK_MODE_EXCLUSIVE;
  uint64_t token = 0;
  int64_t granted_ms = 0;
  std::string value;  // election leader value
  uint64_t client_id = 0;
  uint64_t sequence = 0;
};

// One queued wait (or candidacy).
struct Waiter {
  uint64_t lease = 0;
  v1::LockMode mode = v1::LOCK_MODE_EXCLUSIVE;
  int64_t deadline_ms = kNever;
  std::string value;
  uint64_t client_id = 0;
  uint64_t sequence = 0;
  uint64_t enqueued_index = 0;
};

// What a lock table did, in order. The state machine turns these into events.
struct Change {
  enum class Kind { kGranted, kReleased, kWaitEnded };
  Kind kind = Kind::kGranted;
  std::string name;
  Holder holder;  // kGranted, kReleased
  Waiter waiter;  // kWaitEnded
  bool from_queue = false;
  v1::EndReason reason = v1::END_REASON_UNSPECIFIED;
};
using Changes = std::vector<Change>;

}  // namespace raftlock::lock
