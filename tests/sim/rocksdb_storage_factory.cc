#include "tests/sim/rocksdb_storage_factory.h"

#include <stdlib.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "storage/rocksdb_log_store.h"

namespace raftlock::sim {

RocksDbStorageFactory::RocksDbStorageFactory(std::string parent) {
  if (parent.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    parent = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
  }
  std::string tmpl = parent + "/raftlock-sim-XXXXXX";
  if (::mkdtemp(tmpl.data()) != nullptr) root_ = tmpl;
}

RocksDbStorageFactory::~RocksDbStorageFactory() {
  if (root_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(root_, ec);
}

std::string RocksDbStorageFactory::DirFor(uint64_t id) const {
  return absl::StrCat(root_, "/node-", id);
}

absl::StatusOr<std::unique_ptr<raft::LogStorage>> RocksDbStorageFactory::Create(uint64_t id) {
  if (root_.empty()) return absl::InternalError("could not make a temporary directory");
  auto store = storage::RocksDbLogStore::Open(DirFor(id), {}, /*create=*/true);
  if (!store.ok()) return store.status();
  return std::unique_ptr<raft::LogStorage>(std::move(*store));
}

absl::StatusOr<std::unique_ptr<raft::LogStorage>> RocksDbStorageFactory::Reopen(
    uint64_t id, std::unique_ptr<raft::LogStorage> crashed) {
  crashed.reset();
  auto store = storage::RocksDbLogStore::Open(DirFor(id), {}, /*create=*/false);
  if (!store.ok()) return store.status();
  return std::unique_ptr<raft::LogStorage>(std::move(*store));
}

}  // namespace raftlock::sim
