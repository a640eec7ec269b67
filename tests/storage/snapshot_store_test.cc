// SnapshotStore: atomic checksummed files, chunked reads, retention, and
// refusal of damaged files.
#include "storage/snapshot_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "storage/file_util.h"
#include "tests/storage/test_util.h"

namespace raftlock::storage::testing {
namespace {

Snapshot MakeSnap(uint64_t index, uint64_t term, std::string data) {
  Snapshot s;
  s.set_data(std::move(data));
  s.mutable_metadata()->set_index(index);
  s.mutable_metadata()->set_term(term);
  s.mutable_metadata()->mutable_conf_state()->add_voters(7);
  return s;
}

std::string PathOf(SnapshotStore& store, uint64_t index) {
  auto files = store.List();
  REQUIRE(files.ok());
  for (const auto& f : *files) {
    if (f.index == index) return f.path;
  }
  return "";
}

}  // namespace

TEST_CASE("a saved snapshot loads back with its metadata and data", "[snapshot]") {
  TempDir dir;
  auto store = SnapshotStore::Open(dir.path() + "/snap", {}, true);
  REQUIRE(store.ok());
  std::string data(300000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31);
  REQUIRE((*store)->Save(MakeSnap(42, 7, data)).ok());
  auto loaded = (*store)->Load(42);
  REQUIRE(loaded.ok());
  CHECK(loaded->data() == data);
  CHECK(loaded->metadata().term() == 7);
  CHECK(loaded->metadata().conf_state().voters(0) == 7);
  CHECK((*store)->Load(41).status().code() == absl::StatusCode::kNotFound);
}

TEST_CASE("a snapshot read in chunks reassembles to the same data", "[snapshot]") {
  TempDir dir;
  auto store = SnapshotStore::Open(dir.path(), {}, true);
  REQUIRE(store.ok());
  const std::string data = std::string(10000, 'a') + std::string(5001, 'b');
  REQUIRE((*store)->Save(MakeSnap(3, 1, data)).ok());
  auto reader = (*store)->OpenReader(3);
  REQUIRE(reader.ok());
  CHECK((*reader)->data_size() == data.size());
  CHECK((*reader)->metadata().index() == 3);
  std::string joined;
  for (uint64_t off = 0;; off += 4096) {
    auto chunk = (*reader)->ReadChunk(off, 4096);
    REQUIRE(chunk.ok());
    if (chunk->empty()) break;
    joined += *chunk;
  }
  CHECK(joined == data);
}

TEST_CASE("a corrupt or truncated snapshot file is refused as DataLoss", "[snapshot]") {
  TempDir dir;
  auto store = SnapshotStore::Open(dir.path(), {}, true);
  REQUIRE(store.ok());
  REQUIRE((*store)->Save(MakeSnap(5, 2, std::string(4096, 'z'))).ok());
  const std::string path = PathOf(**store, 5);
  REQUIRE(!path.empty());
  SECTION("one flipped byte") {
    int fd = ::open(path.c_str(), O_RDWR);
    REQUIRE(::pwrite(fd, "Q", 1, 2000) == 1);
    ::close(fd);
    auto s = (*store)->Load(5);
    CHECK(s.status().code() == absl::StatusCode::kDataLoss);
    CHECK_THAT(std::string(s.status().message()), Catch::Contains("checksum mismatch"));
  }
  SECTION("truncated") {
    REQUIRE(::truncate(path.c_str(), 3000) == 0);
    auto s = (*store)->Load(5);
    CHECK(s.status().code() == absl::StatusCode::kDataLoss);
    CHECK_THAT(std::string(s.status().message()), Catch::Contains("corrupt"));
  }
  SECTION("empty") {
    REQUIRE(::truncate(path.c_str(), 0) == 0);
    CHECK((*store)->Load(5).status().code() == absl::StatusCode::kDataLoss);
  }
}

TEST_CASE("leftover temporary snapshot files are removed on open", "[snapshot]") {
  TempDir dir;
  REQUIRE(WriteFileAtomically(dir.path() + "/snap-x.snap.tmp.keep", "x").ok());
  ::rename((dir.path() + "/snap-x.snap.tmp.keep").c_str(),
           (dir.path() + "/snap-00000000000000000009-00000000000000000001.snap.tmp").c_str());
  auto store = SnapshotStore::Open(dir.path(), {}, false);
  REQUIRE(store.ok());
  CHECK(ListDir(dir.path())->empty());
}

TEST_CASE("Prune keeps the newest snapshots at or below the current index", "[snapshot]") {
  TempDir dir;
  auto store = SnapshotStore::Open(dir.path(), SnapshotStore::Options{2}, true);
  REQUIRE(store.ok());
  for (uint64_t i : {10, 20, 30, 40}) REQUIRE((*store)->Save(MakeSnap(i, 1, "d")).ok());
  REQUIRE((*store)->Prune(30).ok());  // 40 was never recorded as current
  auto files = (*store)->List();
  REQUIRE(files->size() == 2);
  CHECK((*files)[0].index == 30);
  CHECK((*files)[1].index == 20);
}

}  // namespace raftlock::storage::testing
