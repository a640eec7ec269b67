#include "storage/fail_stop.h"

#include <unistd.h>

#include <cstdio>
#include <string>

#include "spdlog/spdlog.h"

namespace raftlock::storage {

void FailStop(std::string_view operation, std::string_view detail) {
  const std::string line =
      fmt::format("fail-stop: {} failed: {}; stopping without acknowledging unpersisted state",
                  operation, detail);
  if (auto logger = spdlog::default_logger(); logger != nullptr) {
    logger->critical(line);
    logger->flush();
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(nullptr);
  _exit(kFailStopExitCode);
}

}  // namespace raftlock::storage
