// Helpers shared by the SDK's sources (not installed, not public).
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "raftlock/status.h"

namespace raftlock::internal {

// How long a waiting call (Acquire, Campaign) asks the server to wait: the
// time to `deadline` minus a margin for the server's own "timed out" answer to
// arrive (waits end on applied entries, which come at least every
// TimeAdvance period). 0 (try once) when too little time is left.
int64_t WaitBudgetMs(Deadline deadline);

// True when a failed call may or may not have been applied by the server.
bool OutcomeUnknown(const absl::Status& status);

}  // namespace raftlock::internal
