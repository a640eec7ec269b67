// Property tests: seeded random command sequences.
//  - Determinism and snapshots: a replica restored from a snapshot taken
//    midway, then fed the rest of the log, gives identical results, events and
//    digests to the replica that applied the whole log.
//  - Safety, checked after every entry: never two exclusive holders, never
//    more holders than permits, fencing tokens strictly increase per lock, no
//    lease expires before its TTL since its last accepted keepalive.
#include <map>
#include <random>

#include "tests/lock/harness.h"

namespace raftlock::lock::testing {
namespace {

struct Step {
  v1::Command command;
  std::string output;  // serialized result + events
  uint64_t digest = 0;
};

std::string Output(const ApplyResult& r) {
  std::string out = r.result.SerializeAsString();
  out += r.duplicate ? "D" : "N";
  for (const auto& e : r.events) out += "|" + e.SerializeAsString();
  return out;
}

class Generator {
 public:
  explicit Generator(uint64_t seed) : rng_(seed) {}

  uint64_t Below(uint64_t n) { return n == 0 ? 0 : rng_() % n; }
  bool Chance(int percent) { return Below(100) < static_cast<uint64_t>(percent); }

  v1::Command Next(const LockStateMachine& sm, int64_t* now) {
    // Time: mostly forward, sometimes a lagging stamp (ignored by max).
    if (Chance(10)) {
      *now -= static_cast<int64_t>(Below(200));
    } else {
      *now += static_cast<int64_t>(Below(250));
    }
    v1::Command c;
    if (!recent_.empty() && Chance(8)) {
      c = recent_[Below(recent_.size())];  // a client retry
    } else {
      c = Fresh(sm);
      if (Chance(60)) {
        const uint64_t client = 1 + Below(6);
        c = WithClient(c, client, ++sequence_[client]);
        recent_.push_back(c);
        if (recent_.size() > 20) recent_.erase(recent_.begin());
      }
    }
    c.set_cluster_time_ms(*now);
    return c;
  }

 private:
  uint64_t SomeLease(const LockStateMachine& sm) {
    const auto& all = sm.leases().all();
    if (all.empty() || Chance(5)) return 1 + Below(400);  // probably unknown
    auto it = all.begin();
    std::advance(it, static_cast<long>(Below(all.size())));
    return it->first;
  }
  std::string LockName() {
    static const char* kNames[] = {"a", "b", "c", "sem"};
    return kNames[Below(4)];
  }
  std::string ElectionName() { return Chance(50) ? "e1" : "e2"; }
  uint64_t TokenFor(const LockStateMachine& sm, const std::string& name, uint64_t lease,
                    bool election) {
    if (Chance(15)) return Below(300);  // stale or wrong
    const LockEntry* e = election ? sm.elections().table().Find(name) : sm.locks().Find(name);
    if (e == nullptr) return Below(300);
    for (const Holder& h : e->holders)
      if (h.lease == lease) return h.token;
    return e->holders.empty() ? 0 : e->holders.front().token;
  }

  v1::Command Fresh(const LockStateMachine& sm) {
    const uint64_t op = Below(100);
    const int64_t wait = Chance(50) ? 0 : static_cast<int64_t>(Below(1500));
    if (op < 12) return Grant(Chance(5) ? 50 : 100 + static_cast<int64_t>(Below(2000)));
    if (op < 24) return KeepAlive(SomeLease(sm));
    if (op < 28) return Revoke(SomeLease(sm));
    if (op < 50) {
      const std::string name = LockName();
      const auto mode = Chance(50) ? v1::LOCK_MODE_SHARED : v1::LOCK_MODE_EXCLUSIVE;
      const uint32_t permits = name == "sem" ? (Chance(90) ? 2 : 3) : (Chance(5) ? 2 : 0);
      return Acquire(name, SomeLease(sm), mode, wait, permits);
    }
    if (op < 65) {
      const std::string name = LockName();
      const uint64_t lease = SomeLease(sm);
      return Release(name, lease, TokenFor(sm, name, lease, false));
    }
    if (op < 69) return CancelWait(LockName(), SomeLease(sm));
    if (op < 79)
      return Campaign(ElectionName(), SomeLease(sm), "v" + std::to_string(Below(9)), wait);
    if (op < 85) {
      const std::string name = ElectionName();
      const uint64_t lease = SomeLease(sm);
      return Proclaim(name, lease, TokenFor(sm, name, lease, true), "p");
    }
    if (op < 91) {
      const std::string name = ElectionName();
      const uint64_t lease = SomeLease(sm);
      return Resign(name, lease, Chance(30) ? 0 : TokenFor(sm, name, lease, true));
    }
    if (op < 93) return v1::Command();  // malformed
    return Tick();
  }

  std::mt19937_64 rng_;
  std::map<uint64_t, uint64_t> sequence_;
  std::vector<v1::Command> recent_;
};

// Safety checks that look at the machine from outside, entry by entry.
class SafetyChecker {
 public:
  void Check(const LockStateMachine& sm, const ApplyResult& r, uint64_t index) {
    REQUIRE(sm.CheckInvariants() == "");
    const int64_t now = sm.cluster_time_ms();
    if (!r.duplicate && r.result.code() == 0) {
      if (r.result.has_lease_grant()) {
        keepalive_[r.result.lease_grant().lease_id()] = {now, r.result.lease_grant().ttl_ms()};
      }
      if (r.result.has_lease_keep_alive()) {
        keepalive_[r.result.lease_keep_alive().lease_id()].first = now;
      }
    }
    for (const auto& e : r.events) {
      if (e.has_lease_ended() && e.lease_ended().reason() == v1::END_REASON_LEASE_EXPIRED) {
        auto [last, ttl] = keepalive_.at(e.lease_ended().lease_id());
        INFO("lease " << e.lease_ended().lease_id() << " expired at " << now);
        REQUIRE(now >= last + ttl);
      }
      if (e.has_lock_granted()) {
        const auto& g = e.lock_granted();
        REQUIRE(g.token() == index);
        auto& [last_token, last_index] = tokens_[g.name()];
        REQUIRE(g.token() >= last_token);
        if (last_index != index) REQUIRE(g.token() > last_token);
        last_token = g.token();
        last_index = index;
      }
      if (e.has_election()) {
        REQUIRE(e.election().epoch() > last_epoch_);
        last_epoch_ = e.election().epoch();
      }
    }
    for (const auto& info : sm.ListLocks()) {
      size_t exclusive = 0;
      for (const auto& h : info.holders()) exclusive += h.mode() == v1::LOCK_MODE_EXCLUSIVE;
      REQUIRE(exclusive <= 1);
      if (exclusive == 1) REQUIRE(info.holders_size() == 1);
      if (info.permits() != 0)
        REQUIRE(static_cast<uint32_t>(info.holders_size()) <= info.permits());
    }
  }

 private:
  std::map<uint64_t, std::pair<int64_t, int64_t>> keepalive_;
  std::map<std::string, std::pair<uint64_t, uint64_t>> tokens_;
  uint64_t last_epoch_ = 0;
};

Limits PropertyLimits() {
  Limits l = TestLimits();
  l.max_leases = 10;
  l.max_dedup_clients = 5;
  return l;
}

TEST_CASE("property: a replica restored from a midway snapshot matches the whole-log replica",
          "[property][snapshot]") {
  constexpr int kSeeds = 300;
  constexpr int kSteps = 200;
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    INFO("seed " << seed);
    Generator gen(seed);
    LockStateMachine a(PropertyLimits());
    SafetyChecker safety;
    std::vector<Step> steps;
    int64_t now = 0;
    const size_t cut = 1 + gen.Below(kSteps - 1);
    std::string snapshot;
    for (int i = 0; i < kSteps; ++i) {
      if (steps.size() == cut) snapshot = a.Snapshot();
      Step s;
      s.command = gen.Next(a, &now);
      const uint64_t index = steps.size() + 1;
      ApplyResult r = a.Apply(index, s.command);
      safety.Check(a, r, index);
      s.output = Output(r);
      s.digest = a.Digest();
      steps.push_back(std::move(s));
    }
    LockStateMachine c(PropertyLimits());
    REQUIRE(c.Restore(snapshot).ok());
    REQUIRE(c.applied_index() == cut);
    for (size_t i = cut; i < steps.size(); ++i) {
      INFO("entry " << i + 1 << " (restored at " << cut << ")");
      ApplyResult r = c.Apply(i + 1, steps[i].command);
      REQUIRE(Output(r) == steps[i].output);
      REQUIRE(c.Digest() == steps[i].digest);
    }
    // And a replica replaying the whole log from scratch agrees too.
    LockStateMachine b(PropertyLimits());
    for (size_t i = 0; i < steps.size(); ++i) {
      REQUIRE(Output(b.Apply(i + 1, steps[i].command)) == steps[i].output);
    }
    REQUIRE(b.Snapshot() == a.Snapshot());
  }
}

TEST_CASE("property: random logs exercise grants, queues, expiries and elections", "[property]") {
  // Guards the generator: the property above is only meaningful if the
  // random logs reach the interesting paths.
  std::map<std::string, int> seen;
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    Generator gen(seed);
    LockStateMachine a(PropertyLimits());
    int64_t now = 0;
    for (uint64_t i = 1; i <= 200; ++i) {
      ApplyResult r = a.Apply(i, gen.Next(a, &now));
      if (r.duplicate) ++seen["duplicate"];
      if (r.result.code() != 0) ++seen["error"];
      for (const auto& e : r.events) {
        if (e.has_lock_granted() && e.lock_granted().from_queue()) ++seen["queued grant"];
        if (e.has_lease_ended()) ++seen["lease ended"];
        if (e.has_wait_ended() && e.wait_ended().reason() == v1::END_REASON_TIMED_OUT) {
          ++seen["timeout"];
        }
        if (e.has_election() && e.election().type() == v1::ELECTION_EVENT_NO_LEADER) {
          ++seen["no leader"];
        }
      }
    }
  }
  for (const char* k :
       {"duplicate", "error", "queued grant", "lease ended", "timeout", "no leader"}) {
    INFO(k);
    CHECK(seen[k] > 0);
  }
}

}  // namespace
}  // namespace raftlock::lock::testing
