#include "server/lock/common.h"

namespace raftlock::lock {

int32_t CodeOf(v1::ErrorReason reason) {
  switch (reason) {
    case v1::ERROR_REASON_NONE:
      return kOk;
    case v1::ERROR_REASON_MALFORMED_COMMAND:
    case v1::ERROR_REASON_NAME_EMPTY:
    case v1::ERROR_REASON_NAME_TOO_LONG:
    case v1::ERROR_REASON_VALUE_TOO_LONG:
    case v1::ERROR_REASON_TTL_OUT_OF_RANGE:
    case v1::ERROR_REASON_WAIT_TIMEOUT_OUT_OF_RANGE:
    case v1::ERROR_REASON_PERMITS_OUT_OF_RANGE:
    case v1::ERROR_REASON_INVALID_MODE:
      return kInvalidArgument;
    case v1::ERROR_REASON_LEASE_NOT_FOUND:
      return kNotFound;
    case v1::ERROR_REASON_TOO_MANY_LEASES:
    case v1::ERROR_REASON_TOO_MANY_LOCKS:
    case v1::ERROR_REASON_TOO_MANY_WAITERS:
    case v1::ERROR_REASON_TOO_MANY_ELECTIONS:
      return kResourceExhausted;
    default:
      return kFailedPrecondition;
  }
}

int64_t AddMs(int64_t a, int64_t b) {
  if (b > 0 && a > kNever - b) return kNever;
  return a + b;
}

}  // namespace raftlock::lock
