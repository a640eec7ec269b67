// raftlockctl commands. Each returns the process exit code (ctl.h).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <mutex>
#include <thread>

#include "client/ctl/ctl.h"
#include "client/ctl/guarded_command.h"
#include "raftlock/cluster.h"
#include "raftlock/election.h"
#include "raftlock/mutex.h"
#include "raftlock/session.h"

namespace raftlock::ctl {

namespace {

using std::chrono::milliseconds;
constexpr milliseconds kDefaultRpcTimeout{5000};
constexpr milliseconds kForever{365LL * 24 * 3600 * 1000};

std::string Str(uint64_t v) { return std::to_string(v); }
std::string Str(int64_t v) { return std::to_string(v); }

const char* ModeName(v1::LockMode mode) {
  return mode == v1::LOCK_MODE_SHARED ? "shared" : "exclusive";
}

std::optional<milliseconds> ParseOrComplain(const std::string& flag, const std::string& text) {
  auto parsed = ParseDuration(text);
  if (!parsed) {
    std::cerr << "raftlockctl: " << flag << ": '" << text
              << "' is not a duration (e.g. 500ms, 2s, 1m)\n";
  }
  return parsed;
}

}  // namespace

struct AcquirePhase::State {
  enum Phase { kGranting, kAcquiring, kHolding, kExiting };
  std::shared_ptr<Client> client;
  std::atomic<int> phase{kGranting};
  std::atomic<uint64_t> lease{0};
};

AcquirePhase::AcquirePhase(std::shared_ptr<Client> client) : state_(std::make_shared<State>()) {
  WatchInterrupts();
  state_->client = std::move(client);
  Interrupted().OnCancel([state = state_] {
    int phase = state->phase.load();
    while (phase == State::kGranting || phase == State::kAcquiring) {
      if (!state->phase.compare_exchange_weak(phase, State::kExiting)) continue;
      if (phase == State::kAcquiring) {
        // Nothing may be left behind: a wait, a grant, the lease.
        v1::LeaseRevokeRequest revoke;
        revoke.set_lease_id(state->lease.load());
        (void)state->client->LeaseRevoke(std::move(revoke), After(milliseconds(1000)));
      }
      std::cerr << "raftlockctl: interrupted\n";
      std::_Exit(130);
    }
  });
}

void AcquirePhase::Acquiring(uint64_t lease) {
  state_->lease = lease;
  int expected = State::kGranting;
  if (!state_->phase.compare_exchange_strong(expected, State::kAcquiring)) {
    while (true) pause();  // the interrupt callback is exiting the process
  }
}

void AcquirePhase::Hold() {
  int expected = State::kAcquiring;
  if (!state_->phase.compare_exchange_strong(expected, State::kHolding)) {
    while (true) pause();  // the interrupt callback is exiting the process
  }
}

std::unique_ptr<Session> OpenSession(const std::shared_ptr<Client>& client, milliseconds ttl,
                                     Deadline deadline, int* exit_code, OnSessionLoss on_loss,
                                     const std::string& stop_flag) {
  SessionOptions options;
  options.ttl = ttl;
  if (on_loss.stop_time > milliseconds(0)) {
    // The session's default margin, plus the time the stop may take; the
    // keepalives and the jeopardy warning fit in what is left before loss.
    options.safety_margin = std::max(ttl / 10, milliseconds(100)) + on_loss.stop_time;
    const milliseconds before_loss = ttl - options.safety_margin;
    if (before_loss < milliseconds(300)) {
      std::cerr << "raftlockctl: " << stop_flag << ": too long for --ttl " << ttl.count()
                << "ms: stopping the command may take " << on_loss.stop_time.count()
                << "ms, so the session must report loss that long (plus "
                << (options.safety_margin - on_loss.stop_time).count()
                << "ms) before its lease can expire, which leaves less than 300ms for "
                   "keepalives; give a longer --ttl or a shorter "
                << stop_flag << "\n";
      *exit_code = kExitBadInput;
      return nullptr;
    }
    options.keepalive_interval = std::min(ttl / 3, before_loss / 3);
    options.jeopardy_after = std::min(ttl / 2, before_loss / 2);
  }
  options.on_state_change = [stop = std::move(on_loss.stop)](SessionState state) {
    if (state == SessionState::kLost && stop) {
      stop();
    } else if (state == SessionState::kJeopardy) {
      std::cerr << "raftlockctl: warning: keepalives are failing; the session is in jeopardy\n";
    } else if (state == SessionState::kHealthy) {
      std::cerr << "raftlockctl: keepalives acknowledged again; the session is healthy\n";
    }
  };
  auto session = Session::Create(client, std::move(options), deadline);
  if (!session.ok()) {
    *exit_code = Fail("granting the session's lease", session.status());
    return nullptr;
  }
  return std::move(*session);
}

// ---------------------------------------------------------------- lock

int CmdLock(const Globals& g, const LockArgs& a) {
  if (a.command.empty()) {
    std::cerr << "raftlockctl: lock: give the command to run after '--'\n";
    return kExitBadInput;
  }
  auto ttl = ParseOrComplain("--ttl", a.ttl);
  auto kill_after = ParseOrComplain("--kill-after", a.kill_after);
  auto wait = TimeoutOr(g, kForever);
  if (!ttl || !kill_after || !wait) return kExitBadInput;
  auto client = Connect(g);
  if (!client) return kExitBadInput;
  const bool try_once = wait->count() == 0;
  const Deadline deadline = After(*wait);
  AcquirePhase phase(client);
  int code = kExitOk;
  auto command = std::make_shared<GuardedCommand>(a.name, *kill_after);
  // The grant is one short call; --timeout is how long to wait for the lock.
  auto session = OpenSession(
      client, *ttl, After(kDefaultRpcTimeout), &code,
      {[command] { command->StopOnLoss(); }, *kill_after + GuardedCommand::kAfterSigkill},
      "--kill-after");
  if (!session) return code;
  const uint64_t lease = session->lease_id();
  phase.Acquiring(lease);

  std::unique_ptr<LockHandle> lock;
  absl::Status status;
  bool busy = false;
  if (a.permits > 0) {
    auto sem = std::make_unique<Semaphore>(*session, a.name, a.permits);
    if (try_once) {
      auto got = sem->TryAcquire(After(kDefaultRpcTimeout));
      status = got.status();
      busy = got.ok() && !*got;
    } else {
      status = sem->Acquire(deadline);
    }
    lock = std::move(sem);
  } else if (a.shared) {
    auto mu = std::make_unique<SharedMutex>(*session, a.name);
    if (try_once) {
      auto got = mu->TryLockShared(After(kDefaultRpcTimeout));
      status = got.status();
      busy = got.ok() && !*got;
    } else {
      status = mu->LockShared(deadline);
    }
    lock = std::move(mu);
  } else {
    auto mu = std::make_unique<Mutex>(*session, a.name);
    if (try_once) {
      auto got = mu->TryLock(After(kDefaultRpcTimeout));
      status = got.status();
      busy = got.ok() && !*got;
    } else {
      status = mu->Lock(deadline);
    }
    lock = std::move(mu);
  }
  if (!status.ok()) return Fail("lock " + a.name, status);
  if (busy) {
    std::cerr << "raftlockctl: lock " << a.name << ": held by another session (not acquired)\n";
    return kExitNotAcquired;
  }
  if (g.verbose) {
    std::cerr << "raftlockctl: holding " << a.name << " (token " << lock->token() << ", lease "
              << lease << ")\n";
  }

  phase.Hold();
  const bool started = command->Start(a.command,
                                      {{"RAFTLOCK_FENCING_TOKEN", Str(lock->token())},
                                       {"RAFTLOCK_LOCK_NAME", a.name},
                                       {"RAFTLOCK_LEASE_ID", Str(lease)}},
                                      session->lost_at());
  if (!started) {
    if (command->lost()) {
      std::cerr << "raftlockctl: lock " << a.name << ": session lost before the command started\n";
      return kExitSessionLost;
    }
    (void)lock->Unlock(After(kDefaultRpcTimeout));
    return 127;
  }
  ForwardSignalsTo(
      [command](int signal, bool from_terminal) { command->Forward(signal, from_terminal); });
  if (Interrupted().cancelled()) command->Forward(LastSignal() ? LastSignal() : SIGTERM, false);
  command->AwaitExit();
  ForwardSignalsTo(nullptr);
  const int wstatus = command->Reap();
  if (command->lost()) return kExitSessionLost;

  absl::Status unlocked = lock->Unlock(After(kDefaultRpcTimeout));
  if (!unlocked.ok()) Fail("releasing " + a.name, unlocked);
  (void)session->Close(After(kDefaultRpcTimeout));
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return kExitError;
}

// ---------------------------------------------------------------- lease

int CmdLeaseGrant(const Globals& g, const std::string& ttl_text) {
  auto ttl = ParseOrComplain("TTL", ttl_text);
  auto timeout = TimeoutOr(g, kDefaultRpcTimeout);
  if (!ttl || !timeout) return kExitBadInput;
  auto client = Connect(g);
  if (!client) return kExitBadInput;
  v1::LeaseGrantRequest request;
  request.set_ttl_ms(ttl->count());
  auto granted = client->LeaseGrant(std::move(request), After(*timeout));
  if (!granted.ok()) return Fail("lease grant", granted.status());
  if (g.json()) {
    std::cout << "{\"lease_id\": " << granted->lease_id() << ", \"ttl_ms\": " << granted->ttl_ms()
              << "}\n";
  } else {
    PrintTable({{"LEASE", "TTL_MS"}, {Str(granted->lease_id()), Str(granted->ttl_ms())}});
  }
  return kExitOk;
}

int CmdLeaseKeepAlive(const Globals& g, uint64_t lease, bool once) {
  if (!once) WatchInterrupts();
  auto timeout = TimeoutOr(g, kDefaultRpcTimeout);
  if (!timeout) return kExitBadInput;
  auto client = Connect(g);
  if (!client) return kExitBadInput;
  auto info = client->LeaseTimeToLive(lease, After(*timeout));
  if (!info.ok()) return Fail("lease keepalive", info.status());
  if (!info->found()) {
    std::cerr << "raftlockctl: lease keepalive: lease " << lease << " not found\n";
    return kExitError;
  }
  const milliseconds interval(std::max<int64_t>(100, info->lease().ttl_ms() / 3));
  while (true) {
    auto kept = client->LeaseKeepAlive(lease, After(*timeout));
    if (!kept.ok()) return Fail("lease keepalive", kept.status());
    if (kept->expired()) {
      std::cerr << "raftlockctl: lease keepalive: lease " << lease << " has expired\n";
      return kExitError;
    }
    if (g.json()) {
      std::cout << "{\"lease_id\": " << lease << ", \"ttl_ms\": " << kept->ttl_ms() << "}"
                << std::endl;
    } else {
      std::cout << "lease " << lease << " kept alive, ttl " << kept->ttl_ms() << " ms" << std::endl;
    }
    if (once || Interrupted().WaitUntil(After(interval))) return kExitOk;
  }
}

int CmdLeaseRevoke(const Globals& g, uint64_t lease) {
  auto timeout = TimeoutOr(g, kDefaultRpcTimeout);
  if (!timeout) return kExitBadInput;
  auto client = Connect(g);
  if (!client) return kExitBadInput;
  v1::LeaseRevokeRequest request;
  request.set_lease_id(lease);
  auto revoked = client->LeaseRevoke(std::move(request), After(*timeout));
  if (!revoked.ok()) return Fail("lease revoke", revoked.status());
  if (g.json()) {
    std::cout << "{\"lease_id\": " << lease << ", \"released_holds\": " << revoked->released_holds()
              << ", \"cancelled_waits\": " << revoked->cancelled_waits() << "}\n";
  } else {
    PrintTable({{"LEASE", "RELEASED_HOLDS", "CANCELLED_WAITS"},
                {Str(lease), Str(uint64_t{revoked->released_holds()}),
                 Str(uint64_t{revoked->cancelled_waits()})}});
  }
  return kExitOk;
}

namespace {

std::string JoinNames(const google::protobuf::RepeatedPtrField<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ",") + n;
  return out.empty() ? "-" : out;
}

std::vector<std::string> LeaseRow(const v1::LeaseInfo& info) {
  return {Str(info.lease_id()),    Str(info.ttl_ms()),        Str(info.ttl_remaining_ms()),
          JoinNames(info.locks()), JoinNames(info.waiting()), JoinNames(info.elections())};
}

const std::vector<std::string> kLeaseHeader = {"LEASE", "TTL_MS",  "REMAINING_MS",
                                               "LOCKS", "WAITING", "ELECTIONS"};

}  // namespace

int CmdLeaseTtl(const Globals& g, uint64_t lease) {
  auto timeout = TimeoutOr(g, kDefaultRpcTimeout);
  if (!timeout) return kExitBadInput;
  auto client = Connect(g);
  if (!client) return kExitBadInput;
  auto info = client->LeaseTimeToLive(lease, After(*timeout));
  if (!info.ok()) return Fail("lease ttl", info.status());
  if (g.json()) {
    info->clear_header();
    std::cout << ToJson(*info) << "\n";
  } else if (info->found()) {
    PrintTable({kLeaseHeader, LeaseRow(info->lease())});
  } else {
    std::cout << "lease " << lease << " not found (never granted, revoked or expired)\n";
  }
  return info->found() ? kExitOk : kExitError;
}

int CmdLeaseList(const Globals& g) {
  auto timeout = TimeoutOr(g, kDefaultRpcTimeout);
  if (!timeout) return kExitBadInput;
  auto client = Connect(g);
  if (!client) return kExitBadInput;
  auto list = client->LeaseList(After(*timeout));
  if (!list.ok()) return Fail("lease list", list.status());
  if (g.json()) {
    list->clear_header();
    std::cout << ToJson(*list) << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {kLeaseHeader};
  for (const auto& info : list->leases()) rows.push_back(LeaseRow(info));
  PrintTable(rows);
  return kExitOk;
}

// ---------------------------------------------------------------- locks

int CmdLocksList(const Globals& g, const std::string& prefix) {
  auto timeout = TimeoutOr(g, kDefaultRpcTimeout);
  if (!timeout) return kExitBadInput;
  auto client = Connect(g);
  if (!client) return kExitBadInput;
  auto list = client->LockList(prefix, After(*timeout));
  if (!list.ok()) return Fail("locks list", list.status());
  if (g.json()) {
    list->clear_header();
    std::cout << ToJson(*list) << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "PERMITS", "HOLDERS", "WAITERS", "NEWEST_TOKEN"}};
  for (const auto& lock : list->locks()) {
    uint64_t newest = 0;
    for (const auto& h : lock.holders()) newest = std::max(newest, h.token());
    rows.push_back({lock.name(), Str(uint64_t{lock.permits()}), Str(uint64_t(lock.holders_size())),
                    Str(uint64_t(lock.waiters_size())), Str(newest)});
  }
  PrintTable(rows);
  return kExitOk;
}

int CmdLocksDescribe(const Globals& g, const std::string& name) {
  auto timeout = TimeoutOr(g, kDefaultRpcTimeout);
  if (!timeout) return kExitBadInput;
  auto client = Connect(g);
  if (!client) return kExitBadInput;
  auto described = client->LockDescribe(name, After(*timeout));
  if (!described.ok()) return Fail("locks describe", described.status());
  if (g.json()) {
    described->clear_header();
    std::cout << ToJson(*described) << "\n";
    return kExitOk;
  }
  if (!described->found()) {
    std::cout << "lock " << name << " is free (no holders, no waiters)\n";
    return kExitOk;
  }
  const auto& lock = described->lock();
  std::cout << "lock " << lock.name() << " (permits " << lock.permits() << ")\n";
  std::vector<std::vector<std::string>> rows = {
      {"ROLE", "LEASE", "MODE", "TOKEN/POSITION", "LEASE_REMAINING_MS"}};
  for (const auto& h : lock.holders()) {
    rows.push_back({"holder", Str(h.lease_id()), ModeName(h.mode()), Str(h.token()),
                    Str(h.lease_ttl_remaining_ms())});
  }
  for (const auto& w : lock.waiters()) {
    rows.push_back({"waiter", Str(w.lease_id()), ModeName(w.mode()),
                    "#" + Str(uint64_t{w.position()}), Str(w.lease_ttl_remaining_ms())});
  }
  PrintTable(rows);
  return kExitOk;
}

int CmdLocksValidate(const Globals& g, const std::string& name, uint64_t token) {
  auto timeout = TimeoutOr(g, kDefaultRpcTimeout);
  if (!timeout) return kExitBadInput;
  auto client = Connect(g);
  if (!client) return kExitBadInput;
  auto check = client->ValidateToken(name, token, After(*timeout));
  if (!check.ok()) return Fail("locks validate", check.status());
  if (g.json()) {
    std::cout << "{\"name\": " << JsonString(name) << ", \"token\": " << token
              << ", \"valid\": " << (check->valid() ? "true" : "false")
              << ", \"current_token\": " << check->current_token() << "}\n";
  } else {
    PrintTable({{"NAME", "TOKEN", "VALID", "CURRENT_TOKEN"},
                {name, Str(token), check->valid() ? "yes" : "no", Str(check->current_token())}});
  }
  return check->valid() ? kExitOk : kExitNotAcquired;
}

int CmdLocksAcquire(const Globals& g, const std::string& name, uint64_t lease, bool shared,
                    uint32_t permits) {
  auto wait = TimeoutOr(g, milliseconds(0));
  if (!wait) return kExitBadInput;
  auto client = Connect(g);
  if (!client) return kExitBadInput;
  v1::LockAcquireRequest request;
  request.set_name(name);
  request.set_lease_id(lease);
  request.set_mode(shared ? v1::LOCK_MODE_SHARED : v1::LOCK_MODE_EXCLUSIVE);
  request.set_permits(permits);
  request.set_wait_timeout_ms(wait->count());
  auto acquired = client->LockAcquire(std::move(request), After(*wait + kDefaultRpcTimeout));
  if (!acquired.ok()) return Fail("locks acquire", acquired.status());
  if (g.json()) {
    std::cout << "{\"name\": " << JsonString(name)
              << ", \"acquired\": " << (acquired->acquired() ? "true" : "false")
              << ", \"token\": " << acquired->token()
              << ", \"reason\": " << JsonString(v1::NotAcquiredReason_Name(acquired->reason()))
              << "}\n";
  } else if (acquired->acquired()) {
    PrintTable({{"NAME", "LEASE", "TOKEN"}, {name, Str(lease), Str(acquired->token())}});
  }
  if (acquired->acquired()) return kExitOk;
  if (!g.json()) {
    std::cerr << "raftlockctl: locks acquire: " << name << " not acquired ("
              << v1::NotAcquiredReason_Name(acquired->reason()) << ")\n";
  }
  return acquired->reason() == v1::NOT_ACQUIRED_REASON_TIMED_OUT ? kExitTimeout : kExitNotAcquired;
}

int CmdLocksRelease(const Globals& g, const std::string& name, uint64_t lease, uint64_t token) {
  auto timeout = TimeoutOr(g, kDefaultRpcTimeout);
  if (!timeout) return kExitBadInput;
  auto client = Connect(g);
  if (!client) return kExitBadInput;
  v1::LockReleaseRequest request;
  request.set_name(name);
  request.set_lease_id(lease);
  request.set_token(token);
  auto released = client->LockRelease(std::move(request), After(*timeout));
  if (!released.ok()) return Fail("locks release", released.status());
  if (!g.json()) std::cout << "released " << name << " (token " << token << ")\n";
  if (g.json()) std::cout << "{\"name\": " << JsonString(name) << ", \"released\": true}\n";
  return kExitOk;
}

// ---------------------------------------------------------------- cluster

int CmdClusterStatus(const Globals& g) {
  auto timeout = TimeoutOr(g, kDefaultRpcTimeout);
  if (!timeout) return kExitBadInput;
  auto client = Connect(g);
  if (!client) return kExitBadInput;
  Cluster cluster(client);
  auto replicas = cluster.StatusAll(After(*timeout));
  bool any = false;
  if (g.json()) {
    std::cout << "[";
    for (size_t i = 0; i < replicas.size(); ++i) {
      const auto& r = replicas[i];
      std::cout << (i ? ", " : "") << "{\"endpoint\": " << JsonString(r.endpoint) << ", ";
      if (r.error.ok()) {
        std::cout << "\"status\": " << ToJson(r.status) << "}";
      } else {
        std::cout << "\"error\": " << JsonString(r.error.ToString()) << "}";
      }
      any = any || r.error.ok();
    }
    std::cout << "]\n";
  } else {
    std::vector<std::vector<std::string>> rows = {
        {"ENDPOINT", "ID", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "LAST", "SNAPSHOT"}};
    for (const auto& r : replicas) {
      if (!r.error.ok()) {
        rows.push_back({r.endpoint, "-", "unreachable", "-", "-", "-", "-", "-", "-"});
        continue;
      }
      any = true;
      const auto& s = r.status;
      rows.push_back({r.endpoint, Str(s.node_id()), RoleName(s.role()), Str(s.term()),
                      Str(s.leader_id()), Str(s.commit_index()), Str(s.applied_index()),
                      Str(s.last_index()), Str(s.snapshot_index())});
    }
    PrintTable(rows);
  }
  if (!any) {
    std::cerr << "raftlockctl: cluster status: no replica reachable\n";
    return kExitUnavailable;
  }
  return kExitOk;
}

int CmdClusterMembers(const Globals& g) {
  auto timeout = TimeoutOr(g, kDefaultRpcTimeout);
  if (!timeout) return kExitBadInput;
  auto client = Connect(g);
  if (!client) return kExitBadInput;
  auto members = Cluster(client).Members(After(*timeout));
  if (!members.ok()) return Fail("cluster members", members.status());
  if (g.json()) {
    std::cout << ToJson(*members) << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {{"ID", "PEER", "CLIENT", "VOTER", "LEADER"}};
  for (const auto& m : members->members()) {
    rows.push_back({Str(m.id()), m.peer_address(), m.client_address(), m.voter() ? "yes" : "no",
                    m.id() == members->leader_id() ? "*" : ""});
  }
  PrintTable(rows);
  return kExitOk;
}

int CmdClusterTransfer(const Globals& g, uint64_t target) {
  auto timeout = TimeoutOr(g, milliseconds(10000));
  if (!timeout) return kExitBadInput;
  auto client = Connect(g);
  if (!client) return kExitBadInput;
  auto moved = Cluster(client).TransferLeadership(target, After(*timeout));
  if (!moved.ok()) return Fail("cluster transfer-leader", moved.status());
  if (g.json()) {
    std::cout << "{\"leader_id\": " << moved->leader_id() << ", \"term\": " << moved->term()
              << "}\n";
  } else {
    std::cout << "node " << moved->leader_id() << " leads (term " << moved->term() << ")\n";
  }
  return kExitOk;
}

}  // namespace raftlock::ctl
