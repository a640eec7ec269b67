#include "tests/sim/state_machine.h"

#include <cinttypes>
#include <cstdio>

namespace raftlock::sim {

uint64_t StableHash(std::string_view bytes, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ULL ^ seed;  // FNV-1a
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return MixHash(h, bytes.size());
}

uint64_t MixHash(uint64_t a, uint64_t b) {
  uint64_t z = a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2));  // splitmix64 finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t EntryHash(const raft::Entry& entry) {
  uint64_t h = MixHash(entry.index(), entry.term());
  h = MixHash(h, static_cast<uint64_t>(entry.type()));
  return MixHash(h, StableHash(entry.data()));
}

void HashChainStateMachine::Apply(const raft::Entry& entry) {
  chain_ = MixHash(chain_, EntryHash(entry));
  applied_index_ = entry.index();
  ++applied_count_;
}

std::string HashChainStateMachine::Snapshot() const {
  char buf[80];
  std::snprintf(buf, sizeof(buf), "%" PRIu64 " %" PRIu64 " %" PRIu64, applied_index_,
                applied_count_, chain_);
  return buf;
}

absl::Status HashChainStateMachine::Restore(const std::string& data) {
  uint64_t index = 0, count = 0, chain = 0;
  if (std::sscanf(data.c_str(), "%" SCNu64 " %" SCNu64 " %" SCNu64, &index, &count, &chain) != 3) {
    return absl::InvalidArgumentError("hash-chain snapshot is malformed: '" + data + "'");
  }
  applied_index_ = index;
  applied_count_ = count;
  chain_ = chain;
  return absl::OkStatus();
}

std::string HashChainStateMachine::Digest() const {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64, chain_);
  return buf;
}

StateMachineFactory HashChainFactory() {
  return [](uint64_t) { return std::make_unique<HashChainStateMachine>(); };
}

}  // namespace raftlock::sim
