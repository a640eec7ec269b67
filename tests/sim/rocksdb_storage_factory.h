// A StorageFactory that gives every simulated node a real RocksDbLogStore in
// its own temporary directory, so the simulator's seeds also exercise the
// durable store: a crash closes the store and a restart reopens the directory
// (never creating it anew), and the checker compares what it reads back with
// what was persisted.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "tests/sim/simulator.h"

namespace raftlock::sim {

class RocksDbStorageFactory : public StorageFactory {
 public:
  // Makes a fresh directory under `parent` (default: $TMPDIR or /tmp).
  // Precondition: `parent` exists and is writable; otherwise Create fails.
  explicit RocksDbStorageFactory(std::string parent = "");
  // Removes the directory and everything in it. Every store it made must be
  // closed (destroyed) first.
  ~RocksDbStorageFactory() override;
  RocksDbStorageFactory(const RocksDbStorageFactory&) = delete;
  RocksDbStorageFactory& operator=(const RocksDbStorageFactory&) = delete;

  // An empty store in <root>/node-<id>.
  absl::StatusOr<std::unique_ptr<raft::LogStorage>> Create(uint64_t id) override;
  // Closes `crashed` (RocksDB releases its lock and files), then opens the
  // same directory with create=false: a missing or damaged part is an error.
  absl::StatusOr<std::unique_ptr<raft::LogStorage>> Reopen(
      uint64_t id, std::unique_ptr<raft::LogStorage> crashed) override;

  const std::string& root() const { return root_; }

 private:
  std::string DirFor(uint64_t id) const;
  std::string root_;
};

}  // namespace raftlock::sim
