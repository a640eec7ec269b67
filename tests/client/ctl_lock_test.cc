// raftlockctl lock NAME -- CMD: runs CMD while holding the lock, passes the
// fencing token in RAFTLOCK_FENCING_TOKEN, returns CMD's exit status, and
// stops CMD when the session is lost (exit 6) -- real 3-node cluster.
#include <signal.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/client/client_fixture.h"

using namespace raftlock;
using namespace raftlock::testing;

namespace {

// The number after `key=` in `text` (0 if absent).
uint64_t ValueAfter(const std::string& text, const std::string& key) {
  std::smatch match;
  if (!std::regex_search(text, match, std::regex(key + "=([0-9]+)"))) return 0;
  return std::stoull(match[1].str());
}

const char* kPrintEnv =
    "echo token=$RAFTLOCK_FENCING_TOKEN lease=$RAFTLOCK_LEASE_ID name=$RAFTLOCK_LOCK_NAME";

}  // namespace

TEST_CASE("raftlockctl lock runs the command holding the lock with RAFTLOCK_FENCING_TOKEN",
          "[client][ctl][lock]") {
  TestCluster t;
  auto client = t.NewClient();

  // Rule: the command runs with the token, lease and name in its environment.
  auto first = t.Ctl({"lock", "ctl/job", "--", "/bin/sh", "-c", kPrintEnv});
  INFO(first.err);
  REQUIRE(first.code == 0);
  const uint64_t token1 = ValueAfter(first.out, "token");
  CHECK(token1 > 0);
  CHECK(ValueAfter(first.out, "lease") > 0);
  CHECK(first.out.find("name=ctl/job") != std::string::npos);
  // Rule: the lock is held while the command runs (checked from inside it)
  // and released after.
  auto inside = t.Ctl({"lock", "ctl/job", "--", RAFTLOCKCTL_PATH, "--endpoints", t.Endpoints(),
                       "-o", "json", "locks", "describe", "ctl/job"});
  REQUIRE(inside.code == 0);
  auto held = ParseProtoJson<v1::LockDescribeResponse>(inside.out);
  REQUIRE(held.found());
  REQUIRE(held.lock().holders_size() == 1);
  CHECK(held.lock().holders(0).token() > token1);  // Rule: tokens increase run to run
  auto after = client->LockDescribe("ctl/job", After(5s));
  REQUIRE(after.ok());
  CHECK_FALSE(after->found());
  auto leases = client->LeaseList(After(5s));
  REQUIRE(leases.ok());
  CHECK(leases->leases_size() == 0);  // the session's lease was revoked too

  // Rule: the command's exit status is raftlockctl's.
  auto failing = t.Ctl({"lock", "ctl/job", "--", "/bin/sh", "-c", "exit 7"});
  CHECK(failing.code == 7);
  auto missing = t.Ctl({"lock", "ctl/job", "--", "/nonexistent/program"});
  CHECK(missing.code == 127);

  // Held by a background raftlockctl: try once is 3, a wait that runs out is 4.
  auto holder = t.CtlStart({"lock", "ctl/busy", "--", "/bin/sh", "-c", "echo ready; sleep 20"});
  REQUIRE(holder->WaitForOutput("ready", 10s));
  auto busy = t.Ctl({"--timeout", "0", "lock", "ctl/busy", "--", "/bin/true"});
  INFO(busy.err);
  CHECK(busy.code == 3);
  auto start = Clock::now();
  auto timed_out = t.Ctl({"--timeout", "1s", "lock", "ctl/busy", "--", "/bin/true"});
  INFO(timed_out.err);
  CHECK(timed_out.code == 4);
  CHECK(MillisSince(start) >= 800);  // it waited (not a single try)
  CHECK(MillisSince(start) < 4000);
  // Interrupting the holder stops its command and releases the lock; a waiter
  // then gets it.
  auto waiter = t.CtlStart({"lock", "ctl/busy", "--", "/bin/sh", "-c", kPrintEnv});
  REQUIRE(Eventually(5s, [&] {
    auto d = client->LockDescribe("ctl/busy", After(2s));
    return d.ok() && d->lock().waiters_size() == 1;
  }));
  holder->Signal(SIGTERM);
  auto holder_code = holder->Wait(10s);
  REQUIRE(holder_code.has_value());
  CHECK(*holder_code == 128 + SIGTERM);  // the command was stopped by the signal
  auto waiter_code = waiter->Wait(10s);
  REQUIRE(waiter_code.has_value());
  CHECK(*waiter_code == 0);
  CHECK(ValueAfter(waiter->Stdout(), "token") > held.lock().holders(0).token());

  // Rule: --shared holders coexist; an exclusive one is not acquired.
  auto reader =
      t.CtlStart({"lock", "ctl/shared", "--shared", "--", "/bin/sh", "-c", "echo ready; sleep 20"});
  REQUIRE(reader->WaitForOutput("ready", 10s));
  auto second =
      t.Ctl({"--timeout", "0", "lock", "ctl/shared", "--shared", "--", "/bin/sh", "-c", kPrintEnv});
  INFO(second.err);
  CHECK(second.code == 0);
  CHECK(ValueAfter(second.out, "token") > 0);
  auto writer = t.Ctl({"--timeout", "0", "lock", "ctl/shared", "--", "/bin/true"});
  CHECK(writer.code == 3);
  // A semaphore of 1 permit admits one.
  auto sem_holder = t.CtlStart(
      {"lock", "ctl/sem", "--permits", "1", "--", "/bin/sh", "-c", "echo ready; sleep 20"});
  REQUIRE(sem_holder->WaitForOutput("ready", 10s));
  auto sem_second =
      t.Ctl({"--timeout", "0", "lock", "ctl/sem", "--permits", "1", "--", "/bin/true"});
  CHECK(sem_second.code == 3);
  // Bad input: no command, a bad TTL.
  CHECK(t.Ctl({"lock", "ctl/x"}).code == 2);
  CHECK(t.Ctl({"lock", "ctl/x", "--ttl", "often", "--", "/bin/true"}).code == 2);
  // The session reports loss --kill-after (plus its margin) before the TTL,
  // so a --kill-after that leaves no time for keepalives is bad input.
  auto no_room =
      t.Ctl({"lock", "ctl/x", "--ttl", "1s", "--kill-after", "800ms", "--", "/bin/true"});
  CHECK(no_room.code == 2);
  CHECK(no_room.err.find("--kill-after") != std::string::npos);
}

TEST_CASE("raftlockctl lock stops the command when the session is lost and exits 6",
          "[client][ctl][lock]") {
  TestCluster t;
  auto holder = t.CtlStart({"lock", "ctl/lost", "--ttl", "2s", "--kill-after", "300ms", "--",
                            "/bin/sh", "-c", "echo pid=$$; exec sleep 60"});
  REQUIRE(holder->WaitForOutput("pid=", 10s));
  const pid_t child = static_cast<pid_t>(ValueAfter(holder->Stdout(), "pid"));
  REQUIRE(child > 0);
  REQUIRE(kill(child, 0) == 0);

  // Every replica stops: keepalives fail and the session is lost within its TTL.
  const auto paused_at = Clock::now();
  for (int id = 1; id <= 3; ++id) t.cluster.Pause(id);
  auto code = holder->Wait(5s);
  const double took = MillisSince(paused_at);
  for (int id = 1; id <= 3; ++id) t.cluster.Resume(id);
  INFO("raftlockctl ended after " << took << " ms; stderr: " << holder->Stderr());
  REQUIRE(code.has_value());
  CHECK(*code == 6);
  CHECK(took < 2000 + 300 + 700);  // TTL + kill-after + slack
  CHECK(holder->Stderr().find("session lost") != std::string::npos);
  // The command is gone (it was reaped by raftlockctl).
  errno = 0;
  CHECK(kill(child, 0) == -1);
  CHECK(errno == ESRCH);
}

namespace {

// True once `pid` has exited (gone, or a zombie nobody reaped yet).
bool Gone(pid_t pid) {
  if (kill(pid, 0) != 0) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto paren = line.rfind(')');
  return paren == std::string::npos || line.substr(paren + 2, 1) == "Z";
}

// How many children of `parent` are zombies (exited, not reaped).
int ZombieChildren(pid_t parent) {
  int zombies = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    const auto paren = line.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream fields(line.substr(paren + 2));
    char state = 0;
    pid_t ppid = 0;
    if ((fields >> state >> ppid) && ppid == parent && state == 'Z') ++zombies;
  }
  return zombies;
}

}  // namespace

// The session revokes its lease when it reports loss, and the server expires
// it at the TTL at the latest: either frees the lock. The command must be
// gone before that, also when it ignores SIGTERM and needs --kill-after.
TEST_CASE("raftlockctl lock keeps the lock held until a command stopped on session loss has exited",
          "[client][ctl][lock]") {
  TestCluster t;
  auto client = t.NewClient();
  auto holder = t.CtlStart({"lock", "ctl/grace", "--ttl", "3s", "--kill-after", "1s", "--",
                            "/bin/sh", "-c", "trap '' TERM; echo pid=$$; exec sleep 60"});
  REQUIRE(holder->WaitForOutput("pid=", 10s));
  const pid_t child = static_cast<pid_t>(ValueAfter(holder->Stdout(), "pid"));
  REQUIRE(child > 0);

  // The session is lost while every replica is paused; they come back at
  // once, so a revoke sent after the loss would now succeed.
  for (int id = 1; id <= 3; ++id) t.cluster.Pause(id);
  const bool lost = holder->WaitForStderr("session lost", 5s);
  for (int id = 1; id <= 3; ++id) t.cluster.Resume(id);
  REQUIRE(lost);

  // Until the command is gone (SIGTERM is ignored: it lives until SIGKILL,
  // 1 s later), the lock stays held.
  int free_while_running = 0;
  int checks = 0;
  const auto deadline = Clock::now() + 5s;
  while (!Gone(child) && Clock::now() < deadline) {
    auto described = client->LockDescribe("ctl/grace", After(2s));
    if (!described.ok()) continue;  // the cluster is still electing
    ++checks;
    const bool held = described->found() && described->lock().holders_size() > 0;
    if (!held && !Gone(child)) ++free_while_running;
    std::this_thread::sleep_for(20ms);
  }
  auto code = holder->Wait(5s);
  INFO("stderr: " << holder->Stderr());
  CHECK(Gone(child));
  CHECK(checks > 0);
  CHECK(free_while_running == 0);
  REQUIRE(code.has_value());
  CHECK(*code == 6);
  // Once the command is gone the lease is revoked: the lock is free well
  // before the lease's TTL would have freed it.
  CHECK(Eventually(2s, [&] {
    auto described = client->LockDescribe("ctl/grace", After(1s));
    return described.ok() && !described->found();
  }));
}

// On a terminal the command is part of raftlockctl's job, the terminal's
// foreground. raftlockctl runs as the job of a minimal shell (TerminalProcess).
TEST_CASE("raftlockctl lock on a terminal runs the command in the foreground job",
          "[client][ctl][lock]") {
  TestCluster t;
  auto client = t.NewClient();
  auto on_terminal = [&](const std::string& name, std::vector<std::string> args) {
    std::vector<std::string> argv = {RAFTLOCKCTL_PATH, "--endpoints", t.Endpoints(), "lock", name};
    argv.insert(argv.end(), args.begin(), args.end());
    return std::make_unique<TerminalProcess>(argv);
  };

  // Rule: the command may read and configure the terminal without being
  // stopped (SIGTTIN, SIGTTOU).
  {
    auto reader =
        on_terminal("ctl/tty-read",
                    {"--", "/bin/sh", "-c", "stty sane && echo ready; read line; echo got=$line"});
    REQUIRE(reader->WaitForOutput("ready", 10s));
    reader->Type("hello\n");
    CHECK(reader->WaitForOutput("got=hello", 5s));
    auto code = reader->Wait(5s);
    INFO(reader->Output());
    REQUIRE(code.has_value());
    CHECK(*code == 0);
  }

  // Rule: Ctrl-C reaches the command; raftlockctl then releases the lock and
  // exits with the command's status.
  {
    auto sleeper = on_terminal("ctl/tty-int", {"--", "/bin/sh", "-c", "echo ready; exec sleep 60"});
    REQUIRE(sleeper->WaitForOutput("ready", 10s));
    sleeper->Type("\x03");
    auto code = sleeper->Wait(5s);
    INFO(sleeper->Output());
    REQUIRE(code.has_value());
    CHECK(*code == 128 + SIGINT);
    auto described = client->LockDescribe("ctl/tty-int", After(5s));
    REQUIRE(described.ok());
    CHECK_FALSE(described->found());
  }

  // Rule: Ctrl-Z stops the job, the command with raftlockctl; continued
  // (`fg`), the command finishes.
  {
    auto stopped =
        on_terminal("ctl/tty-stop", {"--", "/bin/sh", "-c", "echo ready; sleep 1; echo finished"});
    REQUIRE(stopped->WaitForOutput("ready", 10s));
    stopped->Type("\x1a");
    auto code = stopped->Wait(10s);
    INFO(stopped->Output());
    REQUIRE(code.has_value());
    CHECK(*code == 0);
    CHECK(stopped->Output().find("[job stopped]") != std::string::npos);
    CHECK(stopped->Output().find("finished") != std::string::npos);
  }

  // Rule: a lost session stops every process the command started, not only
  // the one raftlockctl forked (here a shell's background job, which the
  // terminal's process group does not tell apart from raftlockctl).
  {
    auto holder = on_terminal("ctl/tty-lost", {"--ttl", "2s", "--kill-after", "300ms", "--",
                                               "/bin/sh", "-c", "sleep 60 & echo bg=$!; wait"});
    REQUIRE(holder->WaitForOutput("bg=", 10s));
    REQUIRE(Eventually(2s, [&] { return ValueAfter(holder->Output(), "bg") > 0; }));
    const pid_t background = static_cast<pid_t>(ValueAfter(holder->Output(), "bg"));
    for (int id = 1; id <= 3; ++id) t.cluster.Pause(id);
    auto code = holder->Wait(5s);
    for (int id = 1; id <= 3; ++id) t.cluster.Resume(id);
    INFO(holder->Output());
    REQUIRE(code.has_value());
    CHECK(*code == 6);
    const bool gone = Eventually(2s, [&] { return Gone(background); });
    if (!gone) kill(background, SIGKILL);
    CHECK(gone);
  }
}

TEST_CASE(
    "raftlockctl lock: the command and what it leaves die with raftlockctl, and an interrupt ends "
    "a grant",
    "[client][ctl][lock]") {
  TestCluster t;
  // Rule: the command does not outlive raftlockctl, even when raftlockctl
  // is SIGKILLed (no chance to stop it; its lease will expire).
  auto holder = t.CtlStart(
      {"lock", "ctl/orphan", "--ttl", "2s", "--", "/bin/sh", "-c", "echo pid=$$; exec sleep 60"});
  REQUIRE(holder->WaitForOutput("pid=", 10s));
  const pid_t child = static_cast<pid_t>(ValueAfter(holder->Stdout(), "pid"));
  REQUIRE(child > 0);
  REQUIRE_FALSE(Gone(child));
  holder->Signal(SIGKILL);
  REQUIRE(holder->Wait(5s).has_value());
  CHECK(Eventually(5s, [&] { return Gone(child); }));
  if (!Gone(child)) kill(child, SIGKILL);

  // Rule: what the command leaves running in its process group is killed
  // when it exits, before the lock is released.
  auto leftover = t.Ctl({"lock", "ctl/leftover", "--", "/bin/sh", "-c", "sleep 60 & echo bg=$!"});
  REQUIRE(leftover.code == 0);
  const pid_t background = static_cast<pid_t>(ValueAfter(leftover.out, "bg"));
  REQUIRE(background > 0);
  const bool background_gone = Eventually(1s, [&] { return Gone(background); });
  if (!background_gone) kill(background, SIGKILL);
  CHECK(background_gone);

  // Rule: raftlockctl reaps the processes it adopts from the command while
  // the command runs: no zombies pile up under a long-running command.
  auto adopter = t.CtlStart(
      {"lock", "ctl/adopt", "--", "/bin/sh", "-c", "(sleep 0.1 &); echo started; exec sleep 60"});
  REQUIRE(adopter->WaitForOutput("started", 10s));
  std::this_thread::sleep_for(600ms);  // the adopted sleep has exited by now
  CHECK(ZombieChildren(adopter->pid()) == 0);

  // Rule: an interrupt while the session's lease is being granted (here:
  // nothing listens) ends raftlockctl at once with 130; without one, the
  // grant gives up after the RPC timeout, not the lock's wait (forever).
  for (const char* command : {"lock", "elect"}) {
    std::vector<std::string> argv = {RAFTLOCKCTL_PATH, "--endpoints", "127.0.0.1:1", command,
                                     "ctl/unreachable"};
    argv.push_back(std::string(command) == "lock" ? "--" : "value");
    if (std::string(command) == "lock") argv.push_back("/bin/true");
    ChildProcess granting(argv);
    std::this_thread::sleep_for(500ms);
    granting.Signal(SIGINT);
    auto code = granting.Wait(3s);
    INFO(command << ": " << granting.Stderr());
    REQUIRE(code.has_value());
    CHECK(*code == 130);
  }
}
