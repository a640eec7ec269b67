// A child process for the storage tests that need a real process to die.
//
//   storage_helper append <dir> <seed>
//     Opens <dir> (cluster "crash-test", node 1) and appends synced batches
//     forever. After each Persist returns it writes one line to stdout:
//       ack <first> <last> <entry_term> <hs_term> <hs_vote> <hs_commit>
//     and after each CreateSnapshot+Compact:
//       snap <index>
//     Each line is one write(2) (< PIPE_BUF, so atomic). Entry data encodes
//     its index and term (see Payload). The parent SIGKILLs it at random.
//
//   storage_helper open <dir> <cluster_id> <node_id>
//     Opens the data directory like the server does: on refusal prints
//     "raftlock: <message>" to stderr and exits 2; else prints "ok", exits 0.
//
//   storage_helper failsync <dir>
//     Opens a store on a file system whose WAL fsync fails, then persists a
//     synced batch: the store must fail-stop (exit kFailStopExitCode) with
//     one log line, and must never print "acked".
//
//   storage_helper badread <dir> term|entries
//     Persists entries 1..100, overwrites entry 50's record in RocksDB with
//     garbage behind the store's back, reopens the store (cache empty) and
//     reads entry 50 by Term() or Entries(): the store must fail-stop. It
//     prints "returned: <status>" if the read returns instead.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "storage/data_dir.h"

namespace {

using raftlock::storage::OpenDataDir;

std::atomic<bool> g_fail_sync{false};

class FailingWritableFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  using FSWritableFileOwnerWrapper::FSWritableFileOwnerWrapper;
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* d) override {
    if (g_fail_sync) return rocksdb::IOStatus::IOError("injected fdatasync failure (EIO)");
    return FSWritableFileOwnerWrapper::Sync(o, d);
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* d) override {
    if (g_fail_sync) return rocksdb::IOStatus::IOError("injected fsync failure (EIO)");
    return FSWritableFileOwnerWrapper::Fsync(o, d);
  }
};

class FailingFileSystem : public rocksdb::FileSystemWrapper {
 public:
  using FileSystemWrapper::FileSystemWrapper;
  const char* Name() const override { return "FailingFileSystem"; }
  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* d) override {
    std::unique_ptr<rocksdb::FSWritableFile> inner;
    rocksdb::IOStatus s = target()->NewWritableFile(f, o, &inner, d);
    if (s.ok()) r->reset(new FailingWritableFile(std::move(inner)));
    return s;
  }
};

void WriteLine(const std::string& line) {
  const std::string l = line + "\n";
  if (::write(STDOUT_FILENO, l.data(), l.size()) != static_cast<ssize_t>(l.size())) _exit(3);
}

std::string Payload(uint64_t index, uint64_t term) {
  std::string p = absl::StrCat("i=", index, ";t=", term, ";");
  p.resize(128, '.');
  return p;
}

int Append(const std::string& dir, uint64_t seed) {
  auto dd = OpenDataDir(dir, "crash-test", 1);
  if (!dd.ok()) {
    std::fprintf(stderr, "raftlock: %s\n", std::string(dd.status().message()).c_str());
    return 2;
  }
  auto& store = (*dd)->log_store();
  std::mt19937_64 rng(seed);
  raftlock::raft::HardState hs = store.hard_state();
  if (hs.term() == 0) hs.set_term(1);
  for (uint64_t batch = 0;; ++batch) {
    if (rng() % 8 == 0) {  // an election: new term, a vote in it
      hs.set_term(hs.term() + 1);
      hs.set_vote(1 + rng() % 5);
    }
    raftlock::raft::PersistRequest req;
    const uint64_t first = store.LastIndex() + 1;
    const uint64_t n = 1 + rng() % 16;
    for (uint64_t i = first; i < first + n; ++i) {
      auto& e = req.entries.emplace_back();
      e.set_index(i);
      e.set_term(hs.term());
      e.set_data(Payload(i, hs.term()));
    }
    hs.set_commit(first + n - 1);
    req.hard_state = hs;
    req.sync = true;
    if (auto s = store.Persist(req); !s.ok()) {
      std::fprintf(stderr, "persist: %s\n", std::string(s.message()).c_str());
      return 4;
    }
    WriteLine(absl::StrCat("ack ", first, " ", first + n - 1, " ", hs.term(), " ", hs.term(), " ",
                           hs.vote(), " ", hs.commit()));
    if (batch % 40 == 39 && store.LastIndex() > 20) {
      const uint64_t idx = store.LastIndex() - 10;
      raftlock::raft::ConfState cs;
      cs.add_voters(1);
      if (auto s = store.CreateSnapshot(idx, cs, absl::StrCat("snapshot@", idx)); !s.ok()) {
        std::fprintf(stderr, "snapshot: %s\n", std::string(s.message()).c_str());
        return 4;
      }
      if (auto s = store.Compact(idx); !s.ok()) {
        std::fprintf(stderr, "compact: %s\n", std::string(s.message()).c_str());
        return 4;
      }
      WriteLine(absl::StrCat("snap ", idx));
    }
  }
}

int Open(const std::string& dir, const std::string& cluster, uint64_t node) {
  auto dd = OpenDataDir(dir, cluster, node);
  if (!dd.ok()) {
    std::fprintf(stderr, "raftlock: %s\n", std::string(dd.status().message()).c_str());
    return 2;
  }
  std::printf("ok\n");
  return 0;
}

int FailSync(const std::string& dir) {
  auto fs = std::make_shared<FailingFileSystem>(rocksdb::FileSystem::Default());
  std::shared_ptr<rocksdb::Env> env(rocksdb::NewCompositeEnv(fs).release());
  raftlock::storage::DataDirOptions options;
  options.log.env = env;
  auto dd = OpenDataDir(dir, "crash-test", 1, options);
  if (!dd.ok()) return 2;
  g_fail_sync = true;
  raftlock::raft::PersistRequest req;
  auto& e = req.entries.emplace_back();
  e.set_index(1);
  e.set_term(1);
  req.hard_state.emplace().set_term(1);
  auto s = (*dd)->log_store().Persist(req);
  std::printf("acked: %s\n", s.ToString().c_str());  // must never be reached
  return 0;
}

int BadRead(const std::string& dir, const std::string& how) {
  {
    auto dd = OpenDataDir(dir, "crash-test", 1);
    if (!dd.ok()) return 2;
    raftlock::raft::PersistRequest req;
    for (uint64_t i = 1; i <= 100; ++i) {
      auto& e = req.entries.emplace_back();
      e.set_index(i);
      e.set_term(1);
      e.set_data(Payload(i, 1));
    }
    req.hard_state.emplace().set_term(1);
    req.sync = true;
    if (!(*dd)->log_store().Persist(req).ok()) return 4;
  }
  {
    rocksdb::DBOptions db_options;
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, {}}, {"log", {}}, {"meta", {}}};
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    if (!rocksdb::DB::Open(db_options, dir + "/log", families, &handles, &db).ok()) return 5;
    std::string key;
    for (int i = 7; i >= 0; --i) key.push_back(static_cast<char>((uint64_t{50} >> (8 * i)) & 0xFF));
    rocksdb::WriteOptions sync;
    sync.sync = true;
    const bool put = db->Put(sync, handles[1], key, "not an entry").ok();
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    delete db;
    if (!put) return 5;
  }
  auto dd = OpenDataDir(dir, "crash-test", 1);
  if (!dd.ok()) return 2;
  auto& store = (*dd)->log_store();
  if (how == "term") {
    auto term = store.Term(50);
    std::printf("returned: %s\n", term.ok() ? "a term" : term.status().ToString().c_str());
  } else {
    auto ents = store.Entries(40, 60, UINT64_MAX);
    std::printf("returned: %s\n", ents.ok() ? "entries" : ents.status().ToString().c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  uint64_t n = 0;
  if (mode == "append" && argc == 4 && absl::SimpleAtoi(argv[3], &n)) return Append(argv[2], n);
  if (mode == "open" && argc == 5 && absl::SimpleAtoi(argv[4], &n)) {
    return Open(argv[2], argv[3], n);
  }
  if (mode == "failsync" && argc == 3) return FailSync(argv[2]);
  if (mode == "badread" && argc == 4) return BadRead(argv[2], argv[3]);
  std::fprintf(stderr, "usage: storage_helper append|open|failsync|badread ...\n");
  return 64;
}
