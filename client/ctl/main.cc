// raftlockctl: every raftlock API as a command.
//
//   raftlockctl [--endpoints H:P,...] [--output table|json] [--timeout D] COMMAND ...
//
// --endpoints defaults to $RAFTLOCK_ENDPOINTS, else the local cluster
// (127.0.0.1:9001-9003). --timeout is the command's deadline; for `lock` and
// `elect` it is how long to wait to acquire (default: forever; 0 = try once).
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "client/ctl/ctl.h"

namespace raftlock::ctl {
namespace {

int Main(int argc, char** argv) {
  CLI::App app{"raftlockctl: locks, leases and leader election on a raftlock cluster"};
  app.footer(ExitCodesHelp());
  app.fallthrough();
  app.require_subcommand(1);
  Globals g;
  g.endpoints = "127.0.0.1:9001,127.0.0.1:9002,127.0.0.1:9003";
  app.add_option("--endpoints", g.endpoints, "replica client addresses, comma separated")
      ->envname("RAFTLOCK_ENDPOINTS")
      ->capture_default_str();
  app.add_option("-o,--output", g.output, "table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  app.add_option("--timeout", g.timeout,
                 "deadline (500ms, 2s, 1m); lock/elect: how long to wait to acquire "
                 "(default forever, 0 = try once); locks acquire: how long to wait "
                 "(default: try once); observe: how long to watch (default forever); "
                 "cluster transfer-leader: default 10s; others: default 5s");
  app.add_flag("-v,--verbose", g.verbose, "log the SDK's retries and state changes");

  std::function<int()> run;

  // lock NAME [--shared] [--permits N] [--ttl D] [--kill-after D] -- CMD...
  LockArgs lock_args;
  auto* lock = app.add_subcommand(
      "lock", "run CMD while holding the lock; its fencing token is in $RAFTLOCK_FENCING_TOKEN");
  lock->add_option("name", lock_args.name, "lock name")->required();
  lock->add_option("command", lock_args.command, "the command to run (after --)");
  lock->add_flag("--shared", lock_args.shared, "take the lock in shared mode");
  lock->add_option("--permits", lock_args.permits, "a semaphore of N shared permits");
  lock->add_option("--ttl", lock_args.ttl, "the session's lease TTL")->capture_default_str();
  lock->add_option("--kill-after", lock_args.kill_after,
                   "on session loss: SIGTERM, then SIGKILL after this")
      ->capture_default_str();
  lock->callback([&] { run = [&] { return CmdLock(g, lock_args); }; });

  // lease grant|keepalive|revoke|ttl|list
  auto* lease = app.add_subcommand("lease", "leases (sessions)");
  lease->require_subcommand(1);
  std::string ttl_text;
  uint64_t lease_id = 0;
  bool once = false;
  auto* grant = lease->add_subcommand("grant", "grant a lease with TTL (e.g. 10s); prints its id");
  grant->add_option("ttl", ttl_text, "TTL")->required();
  grant->callback([&] { run = [&] { return CmdLeaseGrant(g, ttl_text); }; });
  auto* keepalive = lease->add_subcommand("keepalive", "keep a lease alive until interrupted");
  keepalive->add_option("id", lease_id, "lease id")->required()->check(CLI::NonNegativeNumber);
  keepalive->add_flag("--once", once, "one keepalive, then exit");
  keepalive->callback([&] { run = [&] { return CmdLeaseKeepAlive(g, lease_id, once); }; });
  auto* revoke = lease->add_subcommand("revoke", "revoke a lease (releases its locks)");
  revoke->add_option("id", lease_id, "lease id")->required()->check(CLI::NonNegativeNumber);
  revoke->callback([&] { run = [&] { return CmdLeaseRevoke(g, lease_id); }; });
  auto* ttl = lease->add_subcommand("ttl", "a lease's TTL, time left, locks and elections");
  ttl->add_option("id", lease_id, "lease id")->required()->check(CLI::NonNegativeNumber);
  ttl->callback([&] { run = [&] { return CmdLeaseTtl(g, lease_id); }; });
  auto* lease_list = lease->add_subcommand("list", "every live lease");
  lease_list->callback([&] { run = [&] { return CmdLeaseList(g); }; });

  // locks list|describe|validate|acquire|release
  auto* locks = app.add_subcommand("locks", "inspect locks");
  locks->require_subcommand(1);
  std::string name, prefix, value;
  uint64_t token = 0;
  bool shared = false;
  uint32_t permits = 0;
  auto* locks_list = locks->add_subcommand("list", "locks whose name starts with PREFIX");
  locks_list->add_option("prefix", prefix, "name prefix");
  locks_list->callback([&] { run = [&] { return CmdLocksList(g, prefix); }; });
  auto* describe = locks->add_subcommand("describe", "holders and waiters of a lock");
  describe->add_option("name", name, "lock name")->required();
  describe->callback([&] { run = [&] { return CmdLocksDescribe(g, name); }; });
  auto* validate =
      locks->add_subcommand("validate", "is TOKEN a current holder's token? (exit 3 if not)");
  validate->add_option("name", name, "lock name")->required();
  validate->add_option("token", token, "fencing token")->required()->check(CLI::NonNegativeNumber);
  validate->callback([&] { run = [&] { return CmdLocksValidate(g, name, token); }; });
  auto* acquire = locks->add_subcommand(
      "acquire", "acquire with an existing lease (--timeout: wait that long; default try once)");
  acquire->add_option("name", name, "lock name")->required();
  acquire->add_option("--lease", lease_id, "lease id")->required()->check(CLI::NonNegativeNumber);
  acquire->add_flag("--shared", shared, "shared mode");
  acquire->add_option("--permits", permits, "semaphore permits");
  acquire->callback(
      [&] { run = [&] { return CmdLocksAcquire(g, name, lease_id, shared, permits); }; });
  auto* release = locks->add_subcommand("release", "release a hold (lease and token)");
  release->add_option("name", name, "lock name")->required();
  release->add_option("--lease", lease_id, "lease id")->required()->check(CLI::NonNegativeNumber);
  release->add_option("--token", token, "fencing token of the hold")
      ->required()
      ->check(CLI::NonNegativeNumber);
  release->callback([&] { run = [&] { return CmdLocksRelease(g, name, lease_id, token); }; });

  // elect NAME VALUE; leader NAME; observe NAME; proclaim; resign
  std::string elect_ttl = "10s";
  auto* elect = app.add_subcommand(
      "elect", "campaign; print when elected; hold until interrupted (then resign)");
  elect->add_option("name", name, "election name")->required();
  elect->add_option("value", value, "the leader value")->required();
  elect->add_option("--ttl", elect_ttl, "the session's lease TTL")->capture_default_str();
  elect->callback([&] { run = [&] { return CmdElect(g, name, value, elect_ttl); }; });
  auto* leader = app.add_subcommand("leader", "who leads an election");
  leader->add_option("name", name, "election name")->required();
  leader->callback([&] { run = [&] { return CmdLeader(g, name); }; });
  uint64_t after_epoch = 0;
  int count = 0;
  auto* observe = app.add_subcommand("observe", "print every change of an election");
  observe->add_option("name", name, "election name")->required();
  observe->add_option("--after", after_epoch, "resume after this epoch")
      ->check(CLI::NonNegativeNumber);
  observe
      ->add_option("--count", count,
                   "exit after N updates (without --after, the first is the current state)")
      ->check(CLI::NonNegativeNumber);
  observe->callback([&] { run = [&] { return CmdObserve(g, name, after_epoch, count); }; });
  auto* proclaim = app.add_subcommand("proclaim", "publish a new leader value (lease and token)");
  proclaim->add_option("name", name, "election name")->required();
  proclaim->add_option("value", value, "the new value")->required();
  proclaim->add_option("--lease", lease_id, "leader's lease id")
      ->required()
      ->check(CLI::NonNegativeNumber);
  proclaim->add_option("--token", token, "leadership token")
      ->required()
      ->check(CLI::NonNegativeNumber);
  proclaim->callback([&] { run = [&] { return CmdProclaim(g, name, lease_id, token, value); }; });
  auto* resign = app.add_subcommand("resign", "step down (token 0: withdraw a candidacy)");
  resign->add_option("name", name, "election name")->required();
  resign->add_option("--lease", lease_id, "lease id")->required()->check(CLI::NonNegativeNumber);
  resign->add_option("--token", token, "leadership token (0 withdraws a candidacy)")
      ->check(CLI::NonNegativeNumber);
  resign->callback([&] { run = [&] { return CmdResign(g, name, lease_id, token); }; });

  // cluster status|members|transfer-leader ID
  auto* cluster = app.add_subcommand("cluster", "cluster administration");
  cluster->require_subcommand(1);
  auto* status = cluster->add_subcommand("status", "every replica's role, term and indexes");
  status->callback([&] { run = [&] { return CmdClusterStatus(g); }; });
  auto* members = cluster->add_subcommand("members", "the voters and the leader");
  members->callback([&] { run = [&] { return CmdClusterMembers(g); }; });
  uint64_t target = 0;
  auto* transfer = cluster->add_subcommand("transfer-leader", "make replica ID the Raft leader");
  transfer->add_option("id", target, "replica id")->required()->check(CLI::PositiveNumber);
  transfer->callback([&] { run = [&] { return CmdClusterTransfer(g, target); }; });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitBadInput;
  }
  // CLI11 treats an empty variable as unset, which would quietly send the
  // command to the default local cluster.
  if (const char* env = std::getenv("RAFTLOCK_ENDPOINTS");
      env != nullptr && app.get_option("--endpoints")->count() == 0 &&
      std::string(env).find_first_not_of(" \t,") == std::string::npos) {
    std::cerr << "raftlockctl: RAFTLOCK_ENDPOINTS is set but lists no endpoint; set it to "
                 "host:port[,host:port...] or unset it\n";
    return kExitBadInput;
  }
  auto logger = spdlog::stderr_color_mt("raftlockctl");
  spdlog::set_default_logger(logger);
  spdlog::set_level(g.verbose ? spdlog::level::debug : spdlog::level::err);
  if (!run) return kExitBadInput;
  InstallSignalWatcher();
  return run();
}

}  // namespace
}  // namespace raftlock::ctl

int main(int argc, char** argv) { return raftlock::ctl::Main(argc, argv); }
