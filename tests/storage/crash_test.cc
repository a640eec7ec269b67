// Durability under real crashes: a child process appends synced batches and
// reports each acknowledged index; it is SIGKILLed at random moments. After
// every kill the store is reopened and checked: every acknowledged entry is
// intact and the hard state (term, vote, commit) never went backwards.
// Also: a failed fsync stops the process (fail-stop) without acknowledging.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "storage/data_dir.h"
#include "storage/fail_stop.h"
#include "tests/storage/subprocess.h"
#include "tests/storage/test_util.h"

namespace raftlock::storage::testing {
namespace {

std::string Payload(uint64_t index, uint64_t term) {
  std::string p = absl::StrCat("i=", index, ";t=", term, ";");
  p.resize(128, '.');
  return p;
}

struct Acked {
  std::map<uint64_t, uint64_t> entry_term;  // index -> term of acknowledged entries
  uint64_t hs_term = 0, hs_vote = 0, hs_commit = 0;
  uint64_t snapshot = 0;
};

// Folds the complete lines of a child's stdout into `acked`.
void Absorb(const std::string& out, Acked* acked) {
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // a partial last line was never fully acknowledged
    std::istringstream l(line);
    std::string kind;
    l >> kind;
    if (kind == "ack") {
      uint64_t first, last, term, hs_term, hs_vote, hs_commit;
      l >> first >> last >> term >> hs_term >> hs_vote >> hs_commit;
      for (uint64_t i = first; i <= last; ++i) acked->entry_term[i] = term;
      acked->hs_term = hs_term;
      acked->hs_vote = hs_vote;
      acked->hs_commit = hs_commit;
    } else if (kind == "snap") {
      l >> acked->snapshot;
    }
  }
}

}  // namespace

TEST_CASE("acknowledged entries and hard state survive SIGKILL at random moments",
          "[crash][process]") {
  constexpr int kKills = 100;
  TempDir tmp;
  std::mt19937_64 rng(20240611);
  Acked acked;
  uint64_t lost = 0, regressions = 0, total_acks = 0, kills = 0, kills_while_appending = 0;
  raft::HardState last_seen;  // the hard state found at the previous reopen
  const auto start = std::chrono::steady_clock::now();
  for (int round = 0; round < kKills; ++round) {
    {
      Child child({STORAGE_HELPER, "append", tmp.path(), std::to_string(rng())});
      // Kill at a random moment: a quarter of the time anywhere from start
      // (often during open/recovery), otherwise while appending (after its
      // first acknowledgement).
      if (rng() % 4 != 0) {
        child.Pump(std::chrono::steady_clock::now() + std::chrono::seconds(10),
                   /*until_stdout=*/true);
      }
      const auto delay = std::chrono::milliseconds(rng() % 100);
      child.Pump(std::chrono::steady_clock::now() + delay);
      if (!child.out().empty()) ++kills_while_appending;
      child.Kill();
      child.Pump(std::chrono::steady_clock::now() + std::chrono::seconds(5));  // drain
      const int st = child.Wait();
      INFO("child stderr: " << child.err());
      REQUIRE(WIFSIGNALED(st));
      REQUIRE(WTERMSIG(st) == SIGKILL);
      ++kills;
      const size_t before = acked.entry_term.size();
      Absorb(child.out(), &acked);
      total_acks += acked.entry_term.size() - before;
    }
    auto dd = OpenDataDir(tmp.path(), "crash-test", 1);
    INFO("round " << round);
    REQUIRE(dd.ok());
    RocksDbLogStore& store = (*dd)->log_store();
    const raft::HardState& hs = store.hard_state();
    // Hard state: never behind what was acknowledged, never behind what an
    // earlier reopen saw.
    if (hs.term() < acked.hs_term || (hs.term() == acked.hs_term && hs.vote() != acked.hs_vote) ||
        hs.commit() < acked.hs_commit) {
      ++regressions;
    }
    if (hs.term() < last_seen.term() ||
        (hs.term() == last_seen.term() && hs.vote() != last_seen.vote())) {
      ++regressions;
    }
    last_seen = hs;
    // The snapshot covers everything acknowledged as snapshotted.
    CHECK(store.snapshot_metadata().index() >= acked.snapshot);
    if (store.snapshot_metadata().index() > 0) {
      auto snap = store.GetSnapshot();
      REQUIRE(snap.ok());
      CHECK(snap->data() == absl::StrCat("snapshot@", snap->metadata().index()));
    }
    // Every acknowledged entry above the compaction point is there, intact.
    const uint64_t first = store.FirstIndex();
    if (!acked.entry_term.empty() && acked.entry_term.rbegin()->first >= first) {
      const uint64_t last_acked = acked.entry_term.rbegin()->first;
      if (store.LastIndex() < last_acked) {
        lost += last_acked - store.LastIndex();
      }
      auto ents = store.Entries(first, std::min(last_acked, store.LastIndex()) + 1, UINT64_MAX);
      REQUIRE(ents.ok());
      for (const raft::Entry& e : *ents) {
        auto it = acked.entry_term.find(e.index());
        if (it == acked.entry_term.end()) continue;
        if (e.term() != it->second || e.data() != Payload(e.index(), e.term())) ++lost;
      }
    }
    if (first > 1) CHECK(first - 1 <= store.snapshot_metadata().index());
    // Entries compacted away are no longer tracked.
    acked.entry_term.erase(acked.entry_term.begin(), acked.entry_term.lower_bound(first));
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "crash test: %llu kills (%llu while appending), %llu acknowledged entries, %llu lost, %llu "
      "hard-state "
      "regressions, final term %llu, %.1f s\n",
      static_cast<unsigned long long>(kills),
      static_cast<unsigned long long>(kills_while_appending),
      static_cast<unsigned long long>(total_acks), static_cast<unsigned long long>(lost),
      static_cast<unsigned long long>(regressions),
      static_cast<unsigned long long>(last_seen.term()), secs);
  CHECK(kills >= 50);
  CHECK(kills_while_appending >= 50);
  CHECK(total_acks > 0);
  CHECK(lost == 0);
  CHECK(regressions == 0);
}

TEST_CASE("a failed fsync stops the process with one log line and no acknowledgement",
          "[failstop][process]") {
  TempDir tmp;
  auto r = Run({STORAGE_HELPER, "failsync", tmp.path()});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == kFailStopExitCode);
  CHECK(r.out.find("acked") == std::string::npos);
  // The line goes to the default spdlog logger (stdout unless configured).
  const std::string log = r.out + r.err;
  CHECK_THAT(log, Catch::Contains("fail-stop: synced log write in"));
  CHECK_THAT(log, Catch::Contains("injected fdatasync failure"));
  size_t lines = 0;
  for (char c : log) lines += c == '\n';
  CHECK(lines == 1);
}

// A read of an entry the store holds that fails (here a corrupt record) used
// to return an error the Raft core read as "no entry": a restarted node
// spun on committed entries it could not apply, and a failed Term() read as
// term 0 could grant a vote to a stale candidate. The store now fail-stops.
TEST_CASE("a failed read of a held entry stops the process", "[failstop][process]") {
  for (const char* how : {"term", "entries"}) {
    TempDir tmp;
    auto r = Run({STORAGE_HELPER, "badread", tmp.path(), how});
    INFO("read by " << how << "\nstdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.exit_code == kFailStopExitCode);
    CHECK(r.out.find("returned") == std::string::npos);
    CHECK_THAT(r.out + r.err, Catch::Contains("fail-stop: reading entr"));
  }
}

}  // namespace raftlock::storage::testing
