#include "storage/data_dir.h"

#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "storage/file_util.h"

namespace raftlock::storage {
namespace {

constexpr char kIdentityFile[] = "IDENTITY";
constexpr char kHeader[] = "raftlock-data-dir";

bool ValidClusterId(const std::string& id) {
  if (id.empty() || id.size() > 256) return false;
  for (unsigned char c : id) {
    if (!std::isgraph(c)) return false;
  }
  return true;
}

std::string Crc8Hex(absl::string_view body) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%08x", Crc32c(body));
  return buf;
}

// Raft state in a directory without IDENTITY that opening its log with
// create=true would hide -- a fresh database in place of one whose CURRENT
// file is gone, and snapshot files pruned as unrecorded -- so it is looked
// for first, without opening anything. An interrupted initialization leaves
// neither snapshot files nor RocksDB data. Returns what was found, or "".
std::string RaftStateUnopened(const std::string& path) {
  if (auto snaps = ListDir(path + "/snap"); snaps.ok()) {
    for (const std::string& name : *snaps) {
      if (name.ends_with(".snap")) return absl::StrCat("snapshot file snap/", name);
    }
  }
  const std::string log = path + "/log";
  if (PathExists(log + "/CURRENT")) return "";  // opened, then checked for state
  if (auto files = ListDir(log); files.ok()) {
    for (const std::string& name : *files) {
      std::error_code ec;
      if (name.ends_with(".sst")) return absl::StrCat("table log/", name, " without log/CURRENT");
      if (name.ends_with(".log") && std::filesystem::file_size(log + "/" + name, ec) > 0 && !ec) {
        return absl::StrCat("write-ahead log log/", name, " without log/CURRENT");
      }
    }
  }
  return "";
}

}  // namespace

std::string EncodeIdentity(const DataDirIdentity& identity) {
  std::string body =
      absl::StrCat(kHeader, "\nformat_version: ", identity.format_version,
                   "\ncluster_id: ", identity.cluster_id, "\nnode_id: ", identity.node_id, "\n");
  return absl::StrCat(body, "crc32c: ", Crc8Hex(body), "\n");
}

absl::StatusOr<DataDirIdentity> DecodeIdentity(const std::string& contents) {
  auto corrupt = [](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("IDENTITY file is corrupt: ", why));
  };
  const size_t crc_pos = contents.rfind("crc32c: ");
  if (crc_pos == std::string::npos || (crc_pos > 0 && contents[crc_pos - 1] != '\n')) {
    return corrupt("no checksum line (truncated?)");
  }
  const std::string body = contents.substr(0, crc_pos);
  if (contents.substr(crc_pos) != absl::StrCat("crc32c: ", Crc8Hex(body), "\n")) {
    return corrupt("checksum mismatch");
  }
  std::vector<std::string> lines = absl::StrSplit(body, '\n', absl::SkipEmpty());
  if (lines.size() != 4 || lines[0] != kHeader) return corrupt("unexpected layout");
  DataDirIdentity id;
  auto field = [&](const std::string& line, absl::string_view name) -> std::optional<std::string> {
    const std::string prefix = absl::StrCat(name, ": ");
    if (line.rfind(prefix, 0) != 0) return std::nullopt;
    return line.substr(prefix.size());
  };
  auto version = field(lines[1], "format_version");
  auto cluster = field(lines[2], "cluster_id");
  auto node = field(lines[3], "node_id");
  if (!version || !cluster || !node) return corrupt("missing field");
  if (!absl::SimpleAtoi(*version, &id.format_version)) return corrupt("bad format_version");
  if (!absl::SimpleAtoi(*node, &id.node_id) || id.node_id == 0) return corrupt("bad node_id");
  id.cluster_id = *cluster;
  if (!ValidClusterId(id.cluster_id)) return corrupt("bad cluster_id");
  return id;
}

absl::StatusOr<std::unique_ptr<DataDir>> OpenDataDir(const std::string& path,
                                                     const std::string& cluster_id,
                                                     uint64_t node_id,
                                                     const DataDirOptions& options) {
  if (!ValidClusterId(cluster_id)) {
    return absl::InvalidArgumentError("cluster id must be non-empty, without whitespace");
  }
  if (node_id == 0) return absl::InvalidArgumentError("node id must be > 0");
  auto refuse = [&](absl::StatusCode code, absl::string_view why) {
    return absl::Status(code, absl::StrCat("refusing data directory ", path, ": ", why));
  };
  const std::string identity_path = path + "/" + kIdentityFile;

  std::unique_ptr<DataDir> dd(new DataDir());
  dd->path_ = path;

  if (PathExists(identity_path)) {
    auto contents = ReadFile(identity_path);
    if (!contents.ok()) return refuse(contents.status().code(), contents.status().message());
    auto id = DecodeIdentity(*contents);
    if (!id.ok()) return refuse(absl::StatusCode::kDataLoss, id.status().message());
    if (id->format_version != kDataDirFormatVersion) {
      return refuse(absl::StatusCode::kFailedPrecondition,
                    absl::StrCat("unknown format version ", id->format_version,
                                 " (this build reads version ", kDataDirFormatVersion, ")"));
    }
    if (id->cluster_id != cluster_id) {
      return refuse(absl::StatusCode::kFailedPrecondition,
                    absl::StrCat("it belongs to cluster '", id->cluster_id, "', not to cluster '",
                                 cluster_id, "'"));
    }
    if (id->node_id != node_id) {
      return refuse(absl::StatusCode::kFailedPrecondition,
                    absl::StrCat("it belongs to node ", id->node_id, ", not to node ", node_id));
    }
    auto log = RocksDbLogStore::Open(path, options.log, /*create=*/false);
    if (!log.ok()) {
      return refuse(log.status().code() == absl::StatusCode::kNotFound ? absl::StatusCode::kDataLoss
                                                                       : log.status().code(),
                    log.status().message());
    }
    dd->identity_ = *id;
    dd->log_ = std::move(*log);
    return dd;
  }

  // No IDENTITY: a new directory, or an initialization cut short.
  if (absl::Status made = EnsureDirs(path); !made.ok()) {
    return refuse(made.code(), made.message());
  }
  auto names = ListDir(path);
  if (!names.ok()) return refuse(names.status().code(), names.status().message());
  bool leftovers = false;
  for (const std::string& name : *names) {
    if (name == "log" || name == "snap") {
      leftovers = true;
    } else if (name != "IDENTITY.tmp") {
      return refuse(absl::StatusCode::kFailedPrecondition,
                    absl::StrCat("it is not empty and has no IDENTITY file (found '", name,
                                 "'); not a raftlock data directory"));
    }
  }
  if (leftovers) {
    if (std::string held = RaftStateUnopened(path); !held.empty()) {
      return refuse(absl::StatusCode::kDataLoss,
                    absl::StrCat("it holds Raft state (", held,
                                 ") but its IDENTITY file is missing; it will not be "
                                 "reinitialized"));
    }
  }
  auto log = RocksDbLogStore::Open(path, options.log, /*create=*/true);
  if (!log.ok()) return refuse(log.status().code(), log.status().message());
  if (leftovers) {
    auto snaps = (*log)->snapshots().List();
    if (!(*log)->IsEmpty() || !snaps.ok() || !snaps->empty()) {
      return refuse(absl::StatusCode::kDataLoss,
                    "it holds Raft state but its IDENTITY file is missing; it will not be "
                    "reinitialized");
    }
  }
  DataDirIdentity id{cluster_id, node_id, kDataDirFormatVersion};
  if (auto s = WriteFileAtomically(identity_path, EncodeIdentity(id)); !s.ok()) {
    return refuse(s.code(), absl::StrCat("writing IDENTITY: ", s.message()));
  }
  dd->identity_ = id;
  dd->created_ = true;
  dd->log_ = std::move(*log);
  return dd;
}

}  // namespace raftlock::storage
