// Example: a worker that writes to a guarded resource only with a current
// fencing token.
//
//   raftlock_example_fenced_worker [ENDPOINTS] [RESOURCE_FILE] [ROUNDS]
//
// The "resource" is a file that remembers the largest token it has accepted
// and refuses writes carrying a smaller one (what a database row, an object
// store precondition or a storage server would do). Run several workers at
// once: every accepted line has a token >= the previous one, even if a worker
// pauses (GC, swap, SIGSTOP) past its lease and wakes up believing it still
// holds the lock.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include "raftlock/client.h"
#include "raftlock/mutex.h"
#include "raftlock/session.h"

namespace {

// The guarded resource: accepts a write only if `token` is not older than the
// newest token it has seen. (A real resource does this check atomically.)
bool GuardedWrite(const std::string& path, uint64_t token, const std::string& line) {
  uint64_t newest = 0;
  {
    std::ifstream in(path);
    std::string word;
    while (in >> word) {
      if (word.rfind("token=", 0) == 0)
        newest = std::max<uint64_t>(newest, std::stoull(word.substr(6)));
    }
  }
  if (token < newest) return false;  // a stale holder: reject
  std::ofstream(path, std::ios::app) << "token=" << token << " " << line << "\n";
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const char* env = std::getenv("RAFTLOCK_ENDPOINTS");
  const std::string endpoints = argc > 1 ? argv[1] : (env ? env : "127.0.0.1:9001");
  const std::string resource = argc > 2 ? argv[2] : "/tmp/raftlock-resource.txt";
  const int rounds = argc > 3 ? std::stoi(argv[3]) : 5;

  raftlock::ClientOptions options;
  options.endpoints = raftlock::Client::ParseEndpoints(endpoints);
  auto client = raftlock::Client::Create(options);
  if (!client.ok()) return std::cerr << client.status() << "\n", 2;
  raftlock::SessionOptions session_options;
  session_options.ttl = std::chrono::seconds(5);
  auto session = raftlock::Session::Create(*client, session_options,
                                           raftlock::After(std::chrono::seconds(10)));
  if (!session.ok()) return std::cerr << session.status() << "\n", 5;

  raftlock::Mutex mutex(**session, "example/resource");
  for (int round = 0; round < rounds; ++round) {
    auto guard = mutex.ScopedLock(raftlock::After(std::chrono::seconds(30)));
    if (!guard.ok()) return std::cerr << "lock: " << guard.status() << "\n", 4;
    // Do the work in small steps, re-checking that the session still holds the
    // lock, and pass the token with every write.
    for (int step = 0; step < 3 && !guard->cancelled().cancelled(); ++step) {
      const std::string line = "worker " + std::to_string(client.value()->client_id()) + " round " +
                               std::to_string(round) + " step " + std::to_string(step);
      if (!GuardedWrite(resource, guard->token(), line)) {
        std::cerr << "resource rejected stale token " << guard->token() << "\n";
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::cout << "round " << round << " done with token " << guard->token() << std::endl;
  }  // the guard releases the lock
  return 0;
}
