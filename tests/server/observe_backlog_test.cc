// ObserveBacklog (server/api/observe_backlog.h): what an Observe stream still
// has to write, bounded by a "skipped" message (docs/semantics.md §4).
#include "server/api/observe_backlog.h"

#include <catch2/catch.hpp>

using raftlock::server::ObserveBacklog;
namespace v1 = raftlock::v1;

namespace {

v1::ElectionEvent Event(uint64_t epoch, v1::ElectionEventType type, uint64_t leader) {
  v1::ElectionEvent event;
  event.set_name("svc");
  event.set_epoch(epoch);
  event.set_type(type);
  event.set_leader_lease_id(leader);
  return event;
}

v1::ElectionInfo State(uint64_t epoch, uint64_t leader) {
  v1::ElectionInfo info;
  info.set_name("svc");
  info.set_epoch(epoch);
  info.set_has_leader(leader != 0);
  info.set_leader_lease_id(leader);
  return info;
}

}  // namespace

TEST_CASE("observe backlog: events are written in order while under the bound", "[observe]") {
  ObserveBacklog backlog(4);
  backlog.AddCurrent(State(1, 7));
  backlog.AddEvent(Event(2, v1::ELECTION_EVENT_PROCLAIMED, 7), State(2, 7));
  backlog.AddEvent(Event(3, v1::ELECTION_EVENT_NO_LEADER, 0), State(3, 0));
  REQUIRE(backlog.size() == 3);
  CHECK(backlog.PopFront().current().epoch() == 1);
  CHECK(backlog.PopFront().event().epoch() == 2);
  CHECK(backlog.PopFront().event().epoch() == 3);
  CHECK(backlog.empty());
}

TEST_CASE("observe backlog: a full backlog becomes one skipped message with the current state",
          "[observe]") {
  ObserveBacklog backlog(2);
  backlog.AddEvent(Event(1, v1::ELECTION_EVENT_ELECTED, 7), State(1, 7));
  backlog.AddEvent(Event(2, v1::ELECTION_EVENT_PROCLAIMED, 7), State(2, 7));
  backlog.AddEvent(Event(3, v1::ELECTION_EVENT_PROCLAIMED, 7), State(3, 7));
  REQUIRE(backlog.size() == 1);
  v1::ObserveResponse skipped = backlog.PopFront();
  CHECK(skipped.skipped());
  CHECK(skipped.current().epoch() == 3);
  // Later events follow the skipped message as usual.
  backlog.AddEvent(Event(4, v1::ELECTION_EVENT_NO_LEADER, 0), State(4, 0));
  REQUIRE(backlog.size() == 1);
  CHECK(backlog.PopFront().event().epoch() == 4);
}

// One entry can hold NO_LEADER then ELECTED; both are pushed with the state
// after the entry. If the bound is hit at NO_LEADER, the skipped message
// already shows the new leader, and the ELECTED event must not follow it
// (the client would see that election twice).
TEST_CASE("observe backlog: an event the skipped state covers is not sent again", "[observe]") {
  ObserveBacklog backlog(2);
  backlog.AddEvent(Event(1, v1::ELECTION_EVENT_ELECTED, 7), State(1, 7));
  backlog.AddEvent(Event(2, v1::ELECTION_EVENT_PROCLAIMED, 7), State(2, 7));
  const v1::ElectionInfo after_entry = State(4, 8);  // NO_LEADER (3), ELECTED 8 (4)
  backlog.AddEvent(Event(3, v1::ELECTION_EVENT_NO_LEADER, 0), after_entry);
  backlog.AddEvent(Event(4, v1::ELECTION_EVENT_ELECTED, 8), after_entry);
  REQUIRE(backlog.size() == 1);
  v1::ObserveResponse skipped = backlog.PopFront();
  CHECK(skipped.skipped());
  CHECK(skipped.current().leader_lease_id() == 8);
  CHECK(backlog.empty());
}

TEST_CASE("observe backlog: missed events from the kept history are all queued", "[observe]") {
  ObserveBacklog backlog(1);
  for (uint64_t epoch = 1; epoch <= 3; ++epoch) {
    backlog.AddMissed(Event(epoch, v1::ELECTION_EVENT_PROCLAIMED, 7));
  }
  CHECK(backlog.size() == 3);
  backlog.Clear();
  CHECK(backlog.empty());
}
