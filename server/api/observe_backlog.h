// The messages an Observe stream has yet to write. Bounded: a client that
// reads too slowly gets one "skipped" message with the election's current
// state in place of the backlog, and no event that state already covers.
// Not thread-safe: ObserveStream calls it under its mutex.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <utility>

#include "proto/api.pb.h"

namespace raftlock::server {

class ObserveBacklog {
 public:
  explicit ObserveBacklog(size_t max_queued) : max_queued_(max_queued) {}

  // The election's state, as the first message of a stream.
  void AddCurrent(const v1::ElectionInfo& current) {
    v1::ObserveResponse message;
    *message.mutable_current() = current;
    queue_.push_back(std::move(message));
  }
  // An event the stream missed before it started (from the kept history,
  // which bounds them); not counted against the bound.
  void AddMissed(const v1::ElectionEvent& event) {
    v1::ObserveResponse message;
    *message.mutable_event() = event;
    queue_.push_back(std::move(message));
  }
  // "Skipped": events up to current.epoch() are not sent; `current` stands
  // for them. Replaces whatever is queued.
  void AddSkipped(const v1::ElectionInfo& current) {
    queue_.clear();
    v1::ObserveResponse message;
    message.set_skipped(true);
    *message.mutable_current() = current;
    queue_.push_back(std::move(message));
    covered_through_epoch_ = std::max(covered_through_epoch_, current.epoch());
  }
  // An event; `current` is the state after the entry that made it, so it may
  // already include later events of that entry. When the backlog is full it
  // becomes AddSkipped(current), and an event `current` covers is dropped.
  void AddEvent(const v1::ElectionEvent& event, const v1::ElectionInfo& current) {
    if (event.epoch() <= covered_through_epoch_) return;
    if (queue_.size() >= max_queued_) {
      AddSkipped(current);
      return;
    }
    v1::ObserveResponse message;
    *message.mutable_event() = event;
    queue_.push_back(std::move(message));
  }

  bool empty() const { return queue_.empty(); }
  size_t size() const { return queue_.size(); }
  // Precondition: !empty().
  v1::ObserveResponse PopFront() {
    v1::ObserveResponse message = std::move(queue_.front());
    queue_.pop_front();
    return message;
  }
  void Clear() { queue_.clear(); }

 private:
  const size_t max_queued_;
  std::deque<v1::ObserveResponse> queue_;
  uint64_t covered_through_epoch_ = 0;  // the newest epoch a skipped message stood for
};

}  // namespace raftlock::server
