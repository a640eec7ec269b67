// Data-directory identity: initialized once, then refused (with a clear
// message and a non-zero exit) when it is of another cluster or node, of an
// unknown format, corrupt, or not a raftlock directory. Never reset silently.
#include "storage/data_dir.h"

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "storage/file_util.h"
#include "tests/storage/subprocess.h"
#include "tests/storage/test_util.h"

namespace raftlock::storage::testing {
namespace {

std::string Message(const absl::Status& s) { return std::string(s.message()); }

void Populate(const std::string& path) {
  auto dd = OpenDataDir(path, "prod-eu", 3);
  REQUIRE(dd.ok());
  raft::PersistRequest req;
  req.entries = MakeEntries(1, 4, 2);
  req.hard_state = MakeHardState(2, 3, 4);
  REQUIRE((*dd)->log_store().Persist(req).ok());
}

// Populate, then a snapshot at index 3 with the log compacted to it.
void PopulateWithSnapshot(const std::string& path) {
  Populate(path);
  auto dd = OpenDataDir(path, "prod-eu", 3);
  REQUIRE(dd.ok());
  raft::ConfState cs;
  cs.add_voters(3);
  REQUIRE((*dd)->log_store().CreateSnapshot(3, cs, "state at 3").ok());
  REQUIRE((*dd)->log_store().Compact(3).ok());
}

}  // namespace

TEST_CASE("a new data directory is initialized and reopens with its state", "[datadir]") {
  TempDir tmp;
  const std::string path = tmp.path() + "/node3";
  {
    auto dd = OpenDataDir(path, "prod-eu", 3);
    REQUIRE(dd.ok());
    CHECK((*dd)->created());
    CHECK((*dd)->identity().node_id == 3);
  }
  Populate(path);
  auto dd = OpenDataDir(path, "prod-eu", 3);
  REQUIRE(dd.ok());
  CHECK(!(*dd)->created());
  CHECK((*dd)->log_store().LastIndex() == 4);
  CHECK((*dd)->log_store().hard_state().vote() == 3);
  auto id = DecodeIdentity(*ReadFile(path + "/IDENTITY"));
  REQUIRE(id.ok());
  CHECK(id->cluster_id == "prod-eu");
  CHECK(id->format_version == kDataDirFormatVersion);
}

TEST_CASE("a data directory of another cluster or node is refused", "[datadir]") {
  TempDir tmp;
  Populate(tmp.path());
  auto other_cluster = OpenDataDir(tmp.path(), "prod-us", 3);
  REQUIRE(!other_cluster.ok());
  CHECK(other_cluster.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(Message(other_cluster.status()),
             Catch::Contains("belongs to cluster 'prod-eu', not to cluster 'prod-us'"));
  auto other_node = OpenDataDir(tmp.path(), "prod-eu", 4);
  REQUIRE(!other_node.ok());
  CHECK_THAT(Message(other_node.status()), Catch::Contains("belongs to node 3, not to node 4"));
  // Refusal left it intact.
  auto dd = OpenDataDir(tmp.path(), "prod-eu", 3);
  REQUIRE(dd.ok());
  CHECK((*dd)->log_store().LastIndex() == 4);
}

TEST_CASE("an unknown format version is refused", "[datadir]") {
  TempDir tmp;
  Populate(tmp.path());
  REQUIRE(WriteFileAtomically(tmp.path() + "/IDENTITY",
                              EncodeIdentity({"prod-eu", 3, kDataDirFormatVersion + 1}))
              .ok());
  auto dd = OpenDataDir(tmp.path(), "prod-eu", 3);
  REQUIRE(!dd.ok());
  CHECK_THAT(Message(dd.status()), Catch::Contains("unknown format version 2"));
}

TEST_CASE("a corrupt or truncated IDENTITY file is refused", "[datadir]") {
  TempDir tmp;
  Populate(tmp.path());
  const std::string id_path = tmp.path() + "/IDENTITY";
  std::string contents = *ReadFile(id_path);
  SECTION("edited node id") {
    contents.replace(contents.find("node_id: 3"), 10, "node_id: 4");
    REQUIRE(WriteFileAtomically(id_path, contents).ok());
    auto dd = OpenDataDir(tmp.path(), "prod-eu", 4);
    REQUIRE(!dd.ok());
    CHECK(dd.status().code() == absl::StatusCode::kDataLoss);
    CHECK_THAT(Message(dd.status()), Catch::Contains("IDENTITY file is corrupt: checksum"));
  }
  SECTION("truncated") {
    REQUIRE(::truncate(id_path.c_str(), 20) == 0);
    auto dd = OpenDataDir(tmp.path(), "prod-eu", 3);
    REQUIRE(!dd.ok());
    CHECK_THAT(Message(dd.status()), Catch::Contains("IDENTITY file is corrupt"));
  }
  SECTION("empty") {
    REQUIRE(::truncate(id_path.c_str(), 0) == 0);
    auto dd = OpenDataDir(tmp.path(), "prod-eu", 3);
    REQUIRE(!dd.ok());
    CHECK_THAT(Message(dd.status()), Catch::Contains("IDENTITY file is corrupt"));
  }
}

TEST_CASE("a directory with a missing IDENTITY is never reinitialized", "[datadir]") {
  TempDir tmp;
  SECTION("foreign contents") {
    REQUIRE(WriteFileAtomically(tmp.path() + "/notes.txt", "hello").ok());
    auto dd = OpenDataDir(tmp.path(), "prod-eu", 3);
    REQUIRE(!dd.ok());
    CHECK_THAT(Message(dd.status()), Catch::Contains("not a raftlock data directory"));
    CHECK(PathExists(tmp.path() + "/notes.txt"));
  }
  SECTION("a log with state") {
    Populate(tmp.path());
    REQUIRE(::unlink((tmp.path() + "/IDENTITY").c_str()) == 0);
    auto dd = OpenDataDir(tmp.path(), "prod-eu", 3);
    REQUIRE(!dd.ok());
    CHECK_THAT(Message(dd.status()), Catch::Contains("holds Raft state but its IDENTITY"));
    CHECK(!PathExists(tmp.path() + "/IDENTITY"));
  }
  // Opening the log with create=true made a fresh database and pruned the
  // snapshots as unrecorded, so the check after it found nothing and the
  // directory was initialized as new.
  SECTION("snapshots whose log was removed") {
    PopulateWithSnapshot(tmp.path());
    REQUIRE(::unlink((tmp.path() + "/IDENTITY").c_str()) == 0);
    REQUIRE(RemovePath(tmp.path() + "/log").ok());
    auto snaps_before = ListDir(tmp.path() + "/snap");
    REQUIRE(snaps_before.ok());
    REQUIRE(!snaps_before->empty());
    auto dd = OpenDataDir(tmp.path(), "prod-eu", 3);
    REQUIRE(!dd.ok());
    CHECK(dd.status().code() == absl::StatusCode::kDataLoss);
    CHECK_THAT(Message(dd.status()), Catch::Contains("holds Raft state (snapshot file snap/"));
    CHECK(ListDir(tmp.path() + "/snap").value() == *snaps_before);
    CHECK(!PathExists(tmp.path() + "/IDENTITY"));
  }
  SECTION("a log whose CURRENT file was removed") {
    Populate(tmp.path());
    REQUIRE(::unlink((tmp.path() + "/IDENTITY").c_str()) == 0);
    REQUIRE(::unlink((tmp.path() + "/log/CURRENT").c_str()) == 0);
    auto dd = OpenDataDir(tmp.path(), "prod-eu", 3);
    REQUIRE(!dd.ok());
    CHECK(dd.status().code() == absl::StatusCode::kDataLoss);
    CHECK_THAT(Message(dd.status()), Catch::Contains("without log/CURRENT"));
    CHECK(!PathExists(tmp.path() + "/IDENTITY"));
  }
  SECTION("an initialization cut short before IDENTITY is resumed") {
    REQUIRE(RocksDbLogStore::Open(tmp.path(), {}, true).ok());
    REQUIRE(WriteFileAtomically(tmp.path() + "/IDENTITY.tmp.x", "partial").ok());
    ::rename((tmp.path() + "/IDENTITY.tmp.x").c_str(), (tmp.path() + "/IDENTITY.tmp").c_str());
    auto dd = OpenDataDir(tmp.path(), "prod-eu", 3);
    REQUIRE(dd.ok());
    CHECK((*dd)->created());
  }
}

TEST_CASE("a data directory is created with its missing parents", "[datadir]") {
  TempDir tmp;
  const std::string path = tmp.path() + "/a/b/node3/";
  auto dd = OpenDataDir(path, "prod-eu", 3);
  REQUIRE(dd.ok());
  CHECK((*dd)->created());
  CHECK(PathExists(tmp.path() + "/a/b/node3/IDENTITY"));
  CHECK(EnsureDirs(tmp.path() + "/a/b").ok());  // already there
  REQUIRE(WriteFileAtomically(tmp.path() + "/file", "x").ok());
  CHECK(!EnsureDirs(tmp.path() + "/file/sub").ok());
}

TEST_CASE("a data directory whose log was removed is refused", "[datadir]") {
  TempDir tmp;
  Populate(tmp.path());
  REQUIRE(RemovePath(tmp.path() + "/log").ok());
  auto dd = OpenDataDir(tmp.path(), "prod-eu", 3);
  REQUIRE(!dd.ok());
  CHECK(dd.status().code() == absl::StatusCode::kDataLoss);
  CHECK_THAT(Message(dd.status()), Catch::Contains("is missing"));
}

TEST_CASE("a refused data directory stops the process with a message and non-zero exit",
          "[datadir][process]") {
  TempDir tmp;
  auto first = Run({STORAGE_HELPER, "open", tmp.path(), "prod-eu", "3"});
  REQUIRE(first.exit_code == 0);
  auto again = Run({STORAGE_HELPER, "open", tmp.path(), "prod-eu", "3"});
  CHECK(again.exit_code == 0);
  auto wrong = Run({STORAGE_HELPER, "open", tmp.path(), "prod-eu", "5"});
  CHECK(wrong.exit_code == 2);
  CHECK_THAT(wrong.err, Catch::Contains("refusing data directory " + tmp.path() +
                                        ": it belongs to node 3, not to node 5"));
}

}  // namespace raftlock::storage::testing
