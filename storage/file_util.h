// Small POSIX file helpers with explicit durability, shared by the data
// directory identity file and the snapshot store.
//
// Every function returns a non-OK status on any failed system call, with the
// path and errno text in the message. Callers decide whether that is a startup
// refusal (DataDir) or a fail-stop (writes on the running node).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace raftlock::storage {

// CRC-32C (Castagnoli), the checksum of every file storage/ writes itself.
uint32_t Crc32c(absl::string_view data, uint32_t crc = 0);

// Writes `contents` to `path` so that after a crash `path` holds either its
// old contents or all of `contents`, never a mix: writes `path`.tmp, fsyncs
// it, renames it over `path`, and fsyncs the parent directory.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents);

// Reads a whole file. NotFound when it does not exist.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// fsyncs a directory, making renames and creations inside it durable.
absl::Status SyncDir(const std::string& path);

// Creates `path` if missing (one level) and fsyncs its parent when created.
absl::Status EnsureDir(const std::string& path);

// Creates `path` and any missing ancestors, each with EnsureDir, so that
// every directory created is durable in its parent.
absl::Status EnsureDirs(const std::string& path);

// Names of the entries of a directory, excluding "." and "..", sorted.
absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path);

bool PathExists(const std::string& path);

// Removes a file or an empty directory tree; used to tidy temporary files.
absl::Status RemovePath(const std::string& path);

// A status naming the failed call, the path and errno's text.
absl::Status ErrnoStatus(absl::string_view call, const std::string& path, int err);

// Writes all of `data` to `fd`, retrying short writes and EINTR. An error
// names `path` (ErrnoStatus). No fsync: the caller decides durability.
absl::Status WriteAll(int fd, absl::string_view data, const std::string& path);

}  // namespace raftlock::storage
