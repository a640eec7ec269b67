// The replicated state machine the simulator applies committed entries to.
//
// The simulator keeps one SimStateMachine per node. It is volatile: a crash
// destroys it, and a restart rebuilds it from the node's durable snapshot
// (Restore) followed by the committed entries the Raft core replays. Anything
// a real replica would keep on disk must therefore live in the snapshot.
//
// Implementations must be deterministic: the same entries applied in the same
// order give the same Digest() on every node. The checker compares digests
// across nodes at equal applied indexes (State Machine Safety).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "raft/storage.h"

namespace raftlock::sim {

class SimStateMachine {
 public:
  virtual ~SimStateMachine() = default;

  // Applies one committed entry (normal or configuration change; the core
  // handles configuration itself, so most machines ignore those).
  virtual void Apply(const raft::Entry& entry) = 0;

  // A self-contained image of the state, enough for Restore().
  virtual std::string Snapshot() const = 0;

  // Replaces the state with an image produced by Snapshot() on any node.
  virtual absl::Status Restore(const std::string& data) = 0;

  // A short string that is equal on two machines iff their states are equal.
  virtual std::string Digest() const = 0;
};

// Creates a fresh (empty) state machine for node `id`.
using StateMachineFactory = std::function<std::unique_ptr<SimStateMachine>(uint64_t id)>;

// The default machine for the Raft-safety seeds: a hash chain over every
// applied entry (index, term, type, data). Two nodes have the same digest at
// index i iff they applied the same sequence of entries up to i.
class HashChainStateMachine : public SimStateMachine {
 public:
  void Apply(const raft::Entry& entry) override;
  std::string Snapshot() const override;
  absl::Status Restore(const std::string& data) override;
  std::string Digest() const override;

  uint64_t applied_index() const { return applied_index_; }
  uint64_t applied_count() const { return applied_count_; }

 private:
  uint64_t applied_index_ = 0;
  uint64_t applied_count_ = 0;
  uint64_t chain_ = 0;
};

StateMachineFactory HashChainFactory();

// Deterministic, platform-independent hashing helpers (never seeded per
// process, unlike absl::Hash), shared by the state machine and the checker.
uint64_t StableHash(std::string_view bytes, uint64_t seed = 0);
uint64_t MixHash(uint64_t a, uint64_t b);
// Hash of an entry's identity and content (index, term, type, data).
uint64_t EntryHash(const raft::Entry& entry);

}  // namespace raftlock::sim
