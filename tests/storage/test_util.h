// Helpers shared by the storage tests: temp dirs, entries, fixtures.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "raft/memory_storage.h"
#include "raft/storage.h"
#include "storage/rocksdb_log_store.h"

namespace raftlock::storage::testing {

// A fresh directory under /tmp, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/raftlock-storage-XXXXXX";
    char* p = ::mkdtemp(tmpl);
    if (p == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline raft::Entry MakeEntry(uint64_t index, uint64_t term, std::string data = "") {
  raft::Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(data.empty() ? "cmd-" + std::to_string(index) + "-" + std::to_string(term) : data);
  return e;
}

// Entries [lo, hi] all with `term`.
inline std::vector<raft::Entry> MakeEntries(uint64_t lo, uint64_t hi, uint64_t term) {
  std::vector<raft::Entry> out;
  for (uint64_t i = lo; i <= hi; ++i) out.push_back(MakeEntry(i, term));
  return out;
}

inline raft::HardState MakeHardState(uint64_t term, uint64_t vote, uint64_t commit) {
  raft::HardState hs;
  hs.set_term(term);
  hs.set_vote(vote);
  hs.set_commit(commit);
  return hs;
}

inline raft::PersistRequest HardStateOnly(const raft::HardState& hs, bool sync = true) {
  raft::PersistRequest req;
  req.hard_state = hs;
  req.sync = sync;
  return req;
}

inline RocksDbLogStoreOptions CacheOptions(size_t cache_entries, size_t snapshots_retained = 3) {
  RocksDbLogStoreOptions o;
  o.cache_max_entries = cache_entries;
  o.snapshots_retained = snapshots_retained;
  return o;
}

// A store under test that can be "restarted": Reopen() keeps only what was
// made durable and builds a new store object from it.
class StoreFixture {
 public:
  virtual ~StoreFixture() = default;
  virtual raft::LogStorage& store() = 0;
  virtual void Reopen() = 0;
  virtual const char* name() const = 0;
};

class MemoryFixture : public StoreFixture {
 public:
  MemoryFixture() : store_(std::make_unique<raft::MemoryStorage>()) {}
  raft::LogStorage& store() override { return *store_; }
  // Everything Persist returned from is durable in memory; a restart keeps it.
  void Reopen() override { store_ = store_->Clone(); }
  const char* name() const override { return "memory"; }

 private:
  std::unique_ptr<raft::MemoryStorage> store_;
};

class RocksFixture : public StoreFixture {
 public:
  explicit RocksFixture(RocksDbLogStoreOptions options = {}) : options_(std::move(options)) {
    auto s = RocksDbLogStore::Open(dir_.path(), options_, /*create=*/true);
    if (!s.ok()) throw std::runtime_error(std::string(s.status().message()));
    store_ = std::move(*s);
  }
  raft::LogStorage& store() override { return *store_; }
  RocksDbLogStore& rocks() { return *store_; }
  void Reopen() override {
    store_.reset();
    auto s = RocksDbLogStore::Open(dir_.path(), options_, /*create=*/false);
    if (!s.ok()) throw std::runtime_error(std::string(s.status().message()));
    store_ = std::move(*s);
  }
  const char* name() const override { return "rocksdb"; }
  const std::string& dir() const { return dir_.path(); }

 private:
  TempDir dir_;
  RocksDbLogStoreOptions options_;
  std::unique_ptr<RocksDbLogStore> store_;
};

}  // namespace raftlock::storage::testing
