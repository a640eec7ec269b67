// Fail-stop: the one way storage/ reacts to a failed write or fsync.
//
// After a failed write or fsync nothing about the file's contents can be
// trusted (Linux may drop the dirty pages and report the error only once), so
// retrying the fsync and carrying on could acknowledge a vote or an entry that
// is not on disk. Instead the process logs one line and exits at once; a
// restart recovers from what is durable.
#pragma once

#include <string_view>

namespace raftlock::storage {

// Exit status of a process stopped by FailStop (EX_IOERR from sysexits.h).
inline constexpr int kFailStopExitCode = 74;

// Logs exactly one line at critical level ("fail-stop: <operation> failed:
// <detail>; stopping without acknowledging unpersisted state"), flushes the
// logs, and terminates the process with kFailStopExitCode via _exit (no
// destructors, no atexit handlers: nothing else gets a chance to write).
[[noreturn]] void FailStop(std::string_view operation, std::string_view detail);

}  // namespace raftlock::storage
