// Helpers shared by the integration tests.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace raftlock::testing {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Polls `condition` every 10 ms until it holds or `timeout` passes.
inline bool Eventually(std::chrono::milliseconds timeout, const std::function<bool()>& condition) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return condition();
}

inline double MillisSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

}  // namespace raftlock::testing
