#include "storage/wal_order_fs.h"

#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "rocksdb/file_system.h"

namespace raftlock::storage {
namespace {

bool IsWal(const std::string& path) {
  return path.size() > 4 && path.compare(path.size() - 4, 4, ".log") == 0;
}

class OpenWals;

// A WAL file that OpenWals can sync from another thread until it is closed.
class TrackedWal final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  TrackedWal(std::unique_ptr<rocksdb::FSWritableFile> file, std::shared_ptr<OpenWals> open);
  ~TrackedWal() override;

  rocksdb::IOStatus Close(const rocksdb::IOOptions& o, rocksdb::IODebugContext* d) override;

  // Syncs the file unless it was closed. Precondition: called by OpenWals.
  rocksdb::IOStatus SyncIfOpen();

 private:
  const std::shared_ptr<OpenWals> open_;
  // Orders SyncIfOpen against Close, so a sync never reaches a closed (and
  // possibly reused) descriptor. Held across that one fdatasync, which only a
  // Close of this file can wait for.
  std::mutex close_mu_;
  bool closed_ = false;
};

// The WAL files RocksDB has open for writing.
class OpenWals {
 public:
  void Add(TrackedWal* wal) {
    std::lock_guard<std::mutex> lock(mu_);
    wals_.insert(wal);
  }
  void Remove(TrackedWal* wal) {
    std::lock_guard<std::mutex> lock(mu_);
    wals_.erase(wal);
  }
  // Syncs every open WAL. Holding mu_ keeps each file alive (its destructor
  // calls Remove) while it is synced, so destroying any WAL waits for the
  // whole pass: mu_ is held across these fdatasyncs, which happen once per
  // WAL switch (every few MiB of log).
  rocksdb::IOStatus SyncAll() {
    std::lock_guard<std::mutex> lock(mu_);
    for (TrackedWal* wal : wals_) {
      rocksdb::IOStatus s = wal->SyncIfOpen();
      if (!s.ok()) return s;
    }
    return rocksdb::IOStatus::OK();
  }

 private:
  std::mutex mu_;
  std::set<TrackedWal*> wals_;
};

TrackedWal::TrackedWal(std::unique_ptr<rocksdb::FSWritableFile> file,
                       std::shared_ptr<OpenWals> open)
    : FSWritableFileOwnerWrapper(std::move(file)), open_(std::move(open)) {
  open_->Add(this);
}

TrackedWal::~TrackedWal() { open_->Remove(this); }

rocksdb::IOStatus TrackedWal::Close(const rocksdb::IOOptions& o, rocksdb::IODebugContext* d) {
  std::lock_guard<std::mutex> lock(close_mu_);
  closed_ = true;
  return FSWritableFileOwnerWrapper::Close(o, d);
}

rocksdb::IOStatus TrackedWal::SyncIfOpen() {
  std::lock_guard<std::mutex> lock(close_mu_);
  if (closed_) return rocksdb::IOStatus::OK();
  return FSWritableFileOwnerWrapper::Sync(rocksdb::IOOptions(), nullptr);
}

class WalOrderFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  explicit WalOrderFileSystem(std::shared_ptr<rocksdb::FileSystem> base)
      : FileSystemWrapper(std::move(base)), open_(std::make_shared<OpenWals>()) {}

  const char* Name() const override { return "RaftlockWalOrderFileSystem"; }

  rocksdb::IOStatus NewWritableFile(const std::string& path, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    if (!IsWal(path)) return target()->NewWritableFile(path, options, result, dbg);
    // Every record of the older WALs becomes durable before the first record
    // of this one is written.
    if (rocksdb::IOStatus s = open_->SyncAll(); !s.ok()) return s;
    std::unique_ptr<rocksdb::FSWritableFile> file;
    rocksdb::IOStatus s = target()->NewWritableFile(path, options, &file, dbg);
    if (s.ok()) result->reset(new TrackedWal(std::move(file), open_));
    return s;
  }

 private:
  const std::shared_ptr<OpenWals> open_;
};

}  // namespace

std::shared_ptr<rocksdb::FileSystem> NewWalOrderFileSystem(
    std::shared_ptr<rocksdb::FileSystem> base) {
  return std::make_shared<WalOrderFileSystem>(std::move(base));
}

}  // namespace raftlock::storage
