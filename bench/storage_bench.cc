// storage_bench: throughput of synced appends to the RocksDB log store,
// beside the machine's raw fdatasync rate for the same bytes (the floor).
//
//   storage_bench [--dir=/tmp] [--seconds=3] [--entry_bytes=128] [--nosync]
//
// For each batch size (1, 16, 256 entries of entry_bytes of data):
//   store: RocksDbLogStore::Persist of one batch (entries + hard state),
//          sync=true -- exactly what a replica does per Ready;
//   raw:   write(2) of batch*entry_bytes to an append-only file, then
//          fdatasync -- the physical floor, measured the same way.
// The two alternate in 20 short slices so that both see the same background
// load (other processes' I/O skews a machine's fsync latency a lot). Prints
// entries/s, MB/s (entry data bytes only), mean and median latency per batch,
// and the ratio store/raw of the median latencies. --nosync measures the
// store's CPU cost alone (sync=false).
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "storage/rocksdb_log_store.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kSlices = 20;

struct Samples {
  std::vector<double> us;  // latency of each batch
  double total_s = 0;
  double Median() {
    std::sort(us.begin(), us.end());
    return us.empty() ? 0 : us[us.size() / 2];
  }
  double Mean() const { return us.empty() ? 0 : total_s * 1e6 / us.size(); }
};

std::string MakeTempDir(const std::string& parent) {
  std::string tmpl = parent + "/raftlock-bench-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::perror("mkdtemp");
    std::exit(1);
  }
  return tmpl;
}

class StoreRunner {
 public:
  StoreRunner(const std::string& dir, size_t batch, size_t entry_bytes, bool sync)
      : batch_(batch), data_(entry_bytes, 'x'), sync_(sync) {
    auto store = raftlock::storage::RocksDbLogStore::Open(dir, {}, /*create=*/true);
    if (!store.ok()) {
      std::fprintf(stderr, "open: %s\n", std::string(store.status().message()).c_str());
      std::exit(1);
    }
    store_ = std::move(*store);
  }
  void RunFor(double seconds, Samples* out) {
    const auto end = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < end) {
      raftlock::raft::PersistRequest req;
      req.entries.reserve(batch_);
      for (size_t k = 0; k < batch_; ++k) {
        auto& e = req.entries.emplace_back();
        e.set_index(next_++);
        e.set_term(1);
        e.set_data(data_);
      }
      auto& hs = req.hard_state.emplace();
      hs.set_term(1);
      hs.set_vote(1);
      hs.set_commit(next_ - 1);
      req.sync = sync_;
      const auto t0 = Clock::now();
      if (auto s = store_->Persist(req); !s.ok()) std::exit(1);
      const double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
      out->us.push_back(us);
      out->total_s += us / 1e6;
    }
  }

 private:
  size_t batch_;
  std::string data_;
  bool sync_;
  uint64_t next_ = 1;
  std::unique_ptr<raftlock::storage::RocksDbLogStore> store_;
};

class RawRunner {
 public:
  RawRunner(const std::string& dir, size_t bytes) : buf_(bytes, 'x') {
    const std::string path = dir + "/raw";
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      std::perror("open");
      std::exit(1);
    }
  }
  ~RawRunner() { ::close(fd_); }
  void RunFor(double seconds, Samples* out) {
    const auto end = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < end) {
      const auto t0 = Clock::now();
      if (::write(fd_, buf_.data(), buf_.size()) != static_cast<ssize_t>(buf_.size()) ||
          ::fdatasync(fd_) != 0) {
        std::perror("write/fdatasync");
        std::exit(1);
      }
      const double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
      out->us.push_back(us);
      out->total_s += us / 1e6;
    }
  }

 private:
  std::string buf_;
  int fd_ = -1;
};

bool Flag(const char* arg, const char* name, std::string* value) {
  const std::string prefix = std::string("--") + name + "=";
  if (std::string(arg).rfind(prefix, 0) != 0) return false;
  *value = std::string(arg).substr(prefix.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "/tmp";
  double seconds = 3;
  uint64_t entry_bytes = 128;
  bool sync = true;
  for (int i = 1; i < argc; ++i) {
    std::string v;
    if (Flag(argv[i], "dir", &v)) {
      dir = v;
    } else if (Flag(argv[i], "seconds", &v) && absl::SimpleAtod(v, &seconds)) {
    } else if (Flag(argv[i], "entry_bytes", &v) && absl::SimpleAtoi(v, &entry_bytes)) {
    } else if (std::string(argv[i]) == "--nosync") {
      sync = false;
    } else {
      std::fprintf(stderr, "usage: %s [--dir=/tmp] [--seconds=3] [--entry_bytes=128] [--nosync]\n",
                   argv[0]);
      return 64;
    }
  }
  std::printf("storage_bench: dir=%s, %.1f s per side per row, %llu-byte entries, sync %s\n\n",
              dir.c_str(), seconds, static_cast<unsigned long long>(entry_bytes),
              sync ? "on" : "OFF");
  std::printf("%5s | %11s %9s %9s %9s | %11s %9s %9s %9s | %6s\n", "batch", "store ent/s", "MB/s",
              "mean us", "p50 us", "raw ent/s", "MB/s", "mean us", "p50 us", "ratio");
  std::printf("%s\n", std::string(104, '-').c_str());
  for (size_t batch : {1, 16, 256}) {
    const std::string store_dir = MakeTempDir(dir);
    const std::string raw_dir = MakeTempDir(dir);
    Samples store, raw;
    {
      StoreRunner s(store_dir, batch, entry_bytes, sync);
      RawRunner r(raw_dir, batch * entry_bytes);
      for (int slice = 0; slice < kSlices; ++slice) {
        s.RunFor(seconds / kSlices, &store);
        r.RunFor(seconds / kSlices, &raw);
      }
    }
    std::filesystem::remove_all(store_dir);
    std::filesystem::remove_all(raw_dir);
    auto ents = [&](const Samples& x) { return x.us.size() * batch / x.total_s; };
    auto mbs = [&](const Samples& x) { return ents(x) * entry_bytes / 1e6; };
    const double store_p50 = store.Median(), raw_p50 = raw.Median();
    std::printf("%5zu | %11.0f %9.2f %9.1f %9.1f | %11.0f %9.2f %9.1f %9.1f | %5.2fx\n", batch,
                ents(store), mbs(store), store.Mean(), store_p50, ents(raw), mbs(raw), raw.Mean(),
                raw_p50, store_p50 / raw_p50);
  }
  std::printf(
      "\nratio = median store latency per synced batch / median raw write+fdatasync latency "
      "of the same data bytes\n");
  return 0;
}
