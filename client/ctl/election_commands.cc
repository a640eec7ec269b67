// raftlockctl election commands: elect, leader, observe, proclaim, resign.
#include <atomic>
#include <cstdio>
#include <iostream>
#include <mutex>

#include "client/ctl/ctl.h"
#include "raftlock/election.h"
#include "raftlock/session.h"

namespace raftlock::ctl {

namespace {

using std::chrono::milliseconds;
constexpr milliseconds kDefaultRpcTimeout{5000};
constexpr milliseconds kForever{365LL * 24 * 3600 * 1000};

std::string UpdateJson(const std::string& name, const ElectionUpdate& u) {
  return "{\"name\": " + JsonString(name) +
         ", \"event\": " + JsonString(ElectionUpdateKindName(u.kind)) +
         ", \"skipped\": " + (u.skipped ? "true" : "false") +
         ", \"epoch\": " + std::to_string(u.epoch) +
         ", \"has_leader\": " + (u.has_leader ? "true" : "false") +
         ", \"leader_lease_id\": " + std::to_string(u.leader_lease_id) +
         ", \"token\": " + std::to_string(u.token) + ", \"value\": " + JsonString(u.value) +
         ", \"reason\": " + JsonString(v1::EndReason_Name(u.reason)) + "}";
}

void PrintUpdateRow(const ElectionUpdate& u) {
  std::string event = ElectionUpdateKindName(u.kind);
  if (u.skipped) event += "(skipped)";
  std::string leader = u.has_leader ? std::to_string(u.leader_lease_id) : "-";
  std::printf("%-8llu %-18s %-20s %-10llu %s\n", static_cast<unsigned long long>(u.epoch),
              event.c_str(), leader.c_str(), static_cast<unsigned long long>(u.token),
              u.has_leader ? u.value.c_str() : "");
  std::fflush(stdout);
}

}  // namespace

int CmdElect(const Globals& g, const std::string& name, const std::string& value,
             const std::string& ttl_text) {
  auto ttl = ParseDuration(ttl_text);
  if (!ttl) {
    std::cerr << "raftlockctl: --ttl: '" << ttl_text << "' is not a duration\n";
    return kExitBadInput;
  }
  auto wait = TimeoutOr(g, kForever);
  if (!wait) return kExitBadInput;
  auto client = Connect(g);
  if (!client) return kExitBadInput;
  const bool try_once = wait->count() == 0;
  AcquirePhase phase(client);
  int code = kExitOk;
  // The grant is one short call; --timeout is how long to wait to be elected.
  auto session = OpenSession(client, *ttl, After(kDefaultRpcTimeout), &code);
  if (!session) return code;
  const uint64_t lease = session->lease_id();
  phase.Acquiring(lease);

  Election election(*session, name);
  // A deadline too close for waiting makes Campaign try once.
  absl::Status status =
      election.Campaign(value, try_once ? After(milliseconds(300)) : After(*wait));
  if (!status.ok()) return Fail("elect " + name, status);
  phase.Hold();
  if (g.json()) {
    std::cout << "{\"name\": " << JsonString(name)
              << ", \"elected\": true, \"epoch\": " << election.epoch()
              << ", \"token\": " << election.token() << ", \"lease_id\": " << lease
              << ", \"value\": " << JsonString(value) << "}" << std::endl;
  } else {
    std::cout << "elected " << name << " (epoch " << election.epoch() << ", token "
              << election.token() << ", lease " << lease << ")" << std::endl;
  }
  // Hold until interrupted or the session is lost.
  while (!Interrupted().WaitUntil(After(milliseconds(50)))) {
    if (session->token().cancelled()) break;
  }
  if (session->state() == SessionState::kLost) {
    std::cerr << "raftlockctl: elect " << name << ": session lost; no longer leading\n";
    return kExitSessionLost;
  }
  absl::Status resigned = election.Resign(After(kDefaultRpcTimeout));
  (void)session->Close(After(kDefaultRpcTimeout));
  if (!resigned.ok()) return Fail("resign " + name, resigned);
  if (!g.json()) std::cout << "resigned " << name << std::endl;
  return kExitOk;
}

int CmdLeader(const Globals& g, const std::string& name) {
  auto timeout = TimeoutOr(g, kDefaultRpcTimeout);
  if (!timeout) return kExitBadInput;
  auto client = Connect(g);
  if (!client) return kExitBadInput;
  auto leader = client->Leader(name, After(*timeout));
  if (!leader.ok()) return Fail("leader " + name, leader.status());
  const auto& info = leader->election();
  if (g.json()) {
    // By hand, not ToJson: proto3 JSON would print the bytes value as base64,
    // unlike elect and observe, which print the value as given.
    std::string candidates;
    for (uint64_t lease : info.candidates()) {
      candidates += (candidates.empty() ? "" : ", ") + std::to_string(lease);
    }
    std::cout << "{\"name\": " << JsonString(name)
              << ", \"has_leader\": " << (info.has_leader() ? "true" : "false")
              << ", \"leader_lease_id\": " << info.leader_lease_id()
              << ", \"value\": " << JsonString(info.value()) << ", \"token\": " << info.token()
              << ", \"epoch\": " << info.epoch() << ", \"candidates\": [" << candidates << "]}\n";
    return kExitOk;
  }
  if (!info.has_leader()) {
    std::cout << "no leader for " << name << " (epoch " << info.epoch() << ", "
              << info.candidates_size() << " candidate(s))\n";
    return kExitOk;
  }
  PrintTable(
      {{"NAME", "LEADER_LEASE", "TOKEN", "EPOCH", "CANDIDATES", "VALUE"},
       {name, std::to_string(info.leader_lease_id()), std::to_string(info.token()),
        std::to_string(info.epoch()), std::to_string(info.candidates_size()), info.value()}});
  return kExitOk;
}

int CmdObserve(const Globals& g, const std::string& name, uint64_t after_epoch, int count) {
  WatchInterrupts();
  std::optional<milliseconds> limit;
  if (!g.timeout.empty()) {
    limit = TimeoutOr(g, kForever);
    if (!limit) return kExitBadInput;
  }
  if (name.empty()) {
    std::cerr << "raftlockctl: observe: NAME must not be empty\n";
    return kExitBadInput;
  }
  auto client = Connect(g);
  if (!client) return kExitBadInput;
  // The observer retries forever; a first call reports an unreachable
  // cluster (exit 5) instead.
  auto first =
      client->Leader(name, After(std::min(limit.value_or(kDefaultRpcTimeout), kDefaultRpcTimeout)));
  if (!first.ok()) return Fail("observe " + name, first.status());
  if (!g.json())
    std::printf("%-8s %-18s %-20s %-10s %s\n", "EPOCH", "EVENT", "LEADER_LEASE", "TOKEN", "VALUE");
  std::fflush(stdout);
  CancellationToken done;
  std::atomic<int> seen{0};
  auto observer = ElectionObserver::Start(
      client, name,
      [&](const ElectionUpdate& update) {
        // Updates can follow the last counted one before the observer stops
        // (NO_LEADER and ELECTED of one entry): --count prints exactly that many.
        if (count > 0 && seen.load() >= count) return;
        if (g.json()) {
          std::cout << UpdateJson(name, update) << std::endl;
        } else {
          PrintUpdateRow(update);
        }
        if (count > 0 && ++seen >= count) done.Cancel("count reached");
      },
      after_epoch);
  const Deadline end = After(limit.value_or(kForever));
  while (!done.WaitUntil(std::min(end, After(milliseconds(50))))) {
    if (Interrupted().cancelled()) break;
    if (Clock::now() >= end) {
      observer.reset();
      return count > 0 ? kExitTimeout : kExitOk;
    }
  }
  return kExitOk;
}

int CmdProclaim(const Globals& g, const std::string& name, uint64_t lease, uint64_t token,
                const std::string& value) {
  auto timeout = TimeoutOr(g, kDefaultRpcTimeout);
  if (!timeout) return kExitBadInput;
  auto client = Connect(g);
  if (!client) return kExitBadInput;
  v1::ProclaimRequest request;
  request.set_name(name);
  request.set_lease_id(lease);
  request.set_token(token);
  request.set_value(value);
  auto proclaimed = client->Proclaim(std::move(request), After(*timeout));
  if (!proclaimed.ok()) return Fail("proclaim " + name, proclaimed.status());
  if (g.json()) {
    std::cout << "{\"name\": " << JsonString(name) << ", \"epoch\": " << proclaimed->epoch()
              << "}\n";
  } else {
    std::cout << "proclaimed " << name << " (epoch " << proclaimed->epoch() << ")\n";
  }
  return kExitOk;
}

int CmdResign(const Globals& g, const std::string& name, uint64_t lease, uint64_t token) {
  auto timeout = TimeoutOr(g, kDefaultRpcTimeout);
  if (!timeout) return kExitBadInput;
  auto client = Connect(g);
  if (!client) return kExitBadInput;
  v1::ResignRequest request;
  request.set_name(name);
  request.set_lease_id(lease);
  request.set_token(token);
  auto resigned = client->Resign(std::move(request), After(*timeout));
  if (!resigned.ok()) return Fail("resign " + name, resigned.status());
  if (g.json()) {
    std::cout << "{\"name\": " << JsonString(name)
              << ", \"was_leader\": " << (resigned->was_leader() ? "true" : "false")
              << ", \"epoch\": " << resigned->epoch() << "}\n";
  } else {
    std::cout << (resigned->was_leader() ? "resigned " : "withdrew candidacy for ") << name
              << " (epoch " << resigned->epoch() << ")\n";
  }
  return kExitOk;
}

}  // namespace raftlock::ctl
