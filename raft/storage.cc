#include "raft/storage.h"

namespace raftlock::raft {
namespace {
constexpr char kCompacted[] = "requested index is unavailable due to compaction";
constexpr char kUnavailable[] = "requested entry at index is unavailable";
constexpr char kSnapshotBusy[] = "snapshot is temporarily unavailable";
}  // namespace

absl::Status CompactedError() { return absl::OutOfRangeError(kCompacted); }
absl::Status UnavailableError() { return absl::NotFoundError(kUnavailable); }
absl::Status SnapshotTemporarilyUnavailableError() { return absl::UnavailableError(kSnapshotBusy); }

bool IsCompacted(const absl::Status& status) {
  return status.code() == absl::StatusCode::kOutOfRange && status.message() == kCompacted;
}
bool IsUnavailable(const absl::Status& status) {
  return status.code() == absl::StatusCode::kNotFound && status.message() == kUnavailable;
}
bool IsSnapshotTemporarilyUnavailable(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable && status.message() == kSnapshotBusy;
}

}  // namespace raftlock::raft
