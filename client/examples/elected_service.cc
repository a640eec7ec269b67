// Example: a service that does its work only while elected.
//
//   raftlock_example_elected_service [ENDPOINTS] [NAME] [TICKS]
//
// Campaigns for NAME; while leader (and while its session is not lost) it
// does one unit of work per tick, publishing its progress with Proclaim; then
// resigns so the next candidate takes over at once. If the session is lost it
// stops working immediately, before another candidate can be elected.
#include <unistd.h>

#include <iostream>
#include <string>
#include <thread>

#include "raftlock/client.h"
#include "raftlock/election.h"
#include "raftlock/session.h"

int main(int argc, char** argv) {
  const char* env = std::getenv("RAFTLOCK_ENDPOINTS");
  const std::string endpoints = argc > 1 ? argv[1] : (env ? env : "127.0.0.1:9001");
  const std::string name = argc > 2 ? argv[2] : "example/service";
  const int ticks = argc > 3 ? std::stoi(argv[3]) : 10;

  raftlock::ClientOptions options;
  options.endpoints = raftlock::Client::ParseEndpoints(endpoints);
  auto client = raftlock::Client::Create(options);
  if (!client.ok()) return std::cerr << client.status() << "\n", 2;
  raftlock::SessionOptions session_options;
  session_options.ttl = std::chrono::seconds(3);
  session_options.on_state_change = [](raftlock::SessionState state) {
    std::cerr << "session " << raftlock::SessionStateName(state) << "\n";
  };
  auto session = raftlock::Session::Create(*client, session_options,
                                           raftlock::After(std::chrono::seconds(10)));
  if (!session.ok()) return std::cerr << session.status() << "\n", 5;

  raftlock::Election election(**session, name);
  const std::string me = "pid-" + std::to_string(getpid());
  absl::Status campaign = election.Campaign(me, raftlock::After(std::chrono::minutes(10)));
  if (!campaign.ok()) return std::cerr << "campaign: " << campaign << "\n", 4;
  std::cout << me << " elected (epoch " << election.epoch() << ", token " << election.token() << ")"
            << std::endl;

  raftlock::CancellationToken lost = (*session)->token();
  for (int tick = 0; tick < ticks && election.leading(); ++tick) {
    // The work: anything that must run on exactly one instance.
    if (lost.WaitUntil(raftlock::After(std::chrono::milliseconds(200)))) break;
    absl::Status proclaimed = election.Proclaim(me + " tick " + std::to_string(tick),
                                                raftlock::After(std::chrono::seconds(2)));
    if (!proclaimed.ok()) break;  // no longer leader: stop working
  }
  if (lost.cancelled()) {
    std::cerr << "session lost: stopped working\n";
    return 6;
  }
  absl::Status resigned = election.Resign(raftlock::After(std::chrono::seconds(2)));
  std::cout << me << " resigned: " << resigned << std::endl;
  return resigned.ok() ? 0 : 1;
}
