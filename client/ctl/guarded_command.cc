#include "client/ctl/guarded_command.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>

extern char** environ;

namespace raftlock::ctl {

namespace {

// Every process below raftlockctl in the process tree, from /proc.
std::vector<pid_t> Descendants() {
  std::multimap<pid_t, pid_t> children;  // parent -> child
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return {};
  while (dirent* entry = readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(entry->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    std::ifstream stat(std::string("/proc/") + entry->d_name + "/stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    const size_t paren = line.rfind(')');  // the name may hold spaces and ')'
    if (paren == std::string::npos) continue;
    char state = 0;
    long parent = 0;
    if (std::sscanf(line.c_str() + paren + 1, " %c %ld", &state, &parent) != 2) continue;
    children.emplace(static_cast<pid_t>(parent), static_cast<pid_t>(pid));
  }
  closedir(proc);
  std::vector<pid_t> found;
  std::vector<pid_t> next = {getpid()};
  while (!next.empty()) {
    const pid_t parent = next.back();
    next.pop_back();
    auto [first, last] = children.equal_range(parent);
    for (auto it = first; it != last; ++it) {
      found.push_back(it->second);
      next.push_back(it->second);
    }
  }
  return found;
}

// Forks and execs `command` with `extra_env`, in a new process group when
// `own_group`. The child is killed if raftlockctl dies (PR_SET_PDEATHSIG).
// Returns the pid, or -1 (reported on stderr).
pid_t Spawn(const std::vector<std::string>& command,
            const std::vector<std::pair<std::string, std::string>>& extra_env, bool own_group) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    bool replaced = false;
    for (const auto& [key, value] : extra_env)
      replaced = replaced || entry.rfind(key + "=", 0) == 0;
    if (!replaced) env.push_back(entry);
  }
  for (const auto& [key, value] : extra_env) env.push_back(key + "=" + value);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = command;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int exec_error[2];  // the child reports a failed exec here; a good exec closes it
  if (pipe2(exec_error, O_CLOEXEC) != 0) {
    std::cerr << "raftlockctl: cannot run '" << command[0] << "': " << std::strerror(errno) << "\n";
    return -1;
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {  // only async-signal-safe calls from here to exec
    close(exec_error[0]);
    if (own_group) setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // raftlockctl died before prctl
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE}) sigaction(s, &dfl, nullptr);
    execvpe(argv[0], argv.data(), envp.data());
    const int error = errno;
    (void)!write(exec_error[1], &error, sizeof error);
    _exit(127);
  }
  close(exec_error[1]);
  if (pid < 0) {
    close(exec_error[0]);
    std::cerr << "raftlockctl: cannot run '" << command[0] << "': " << std::strerror(errno) << "\n";
    return -1;
  }
  if (own_group) setpgid(pid, pid);  // as the child does: either may run first
  int error = 0;
  ssize_t n;
  while ((n = read(exec_error[0], &error, sizeof error)) < 0 && errno == EINTR) {
  }
  close(exec_error[0]);
  if (n > 0) {
    int ignored;
    waitpid(pid, &ignored, 0);
    std::cerr << "raftlockctl: cannot run '" << command[0] << "': " << std::strerror(error) << "\n";
    return -1;
  }
  return pid;
}

}  // namespace

bool GuardedCommand::Start(const std::vector<std::string>& command,
                           const std::vector<std::pair<std::string, std::string>>& env,
                           Deadline lost_at) {
  std::lock_guard<std::mutex> lock(mu_);
  if (lost_) return false;
  if (Clock::now() >= lost_at) {
    // The lease may have lapsed (raftlockctl was stopped, say) before the
    // session could report it: the command must not start.
    lost_ = true;
    return false;
  }
  // An inherited SIG_IGN would let the kernel reap the command behind
  // AwaitExit's back, and free its pid for reuse.
  signal(SIGCHLD, SIG_DFL);
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  own_group_ = isatty(STDIN_FILENO) == 0;
  pid_ = Spawn(command, env, own_group_);
  return pid_ > 0;
}

void GuardedCommand::Forward(int signal, bool from_terminal) {
  std::lock_guard<std::mutex> lock(mu_);
  if (exited_ || (from_terminal && !own_group_)) return;
  kill(own_group_ ? -pid_ : pid_, signal);
}

void GuardedCommand::AwaitExit() {
  while (true) {
    siginfo_t info{};
    if (waitid(P_ALL, 0, &info, WEXITED | WNOWAIT) < 0) {
      if (errno == EINTR) continue;
      break;  // not expected: the command is a child until Reap()
    }
    if (info.si_pid == pid_) break;
    // An orphan of the command, adopted by the subreaper: reaped under mu_,
    // so that no sweep can signal its pid after it is freed.
    std::lock_guard<std::mutex> lock(mu_);
    (void)waitpid(info.si_pid, nullptr, WNOHANG);
  }
  Exited();
}

int GuardedCommand::Reap() {
  int wstatus = 0;
  while (waitpid(pid_, &wstatus, 0) < 0 && errno == EINTR) {
  }
  return wstatus;
}

void GuardedCommand::SignalAllLocked(int signal) {
  if (!exited_) kill(own_group_ ? -pid_ : pid_, signal);
  for (pid_t descendant : Descendants()) {
    if (descendant != pid_) kill(descendant, signal);
  }
}

void GuardedCommand::StopOnLoss() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (exited_) return;  // lost after the command's end
    lost_ = true;
    if (pid_ < 0) return;
    std::cerr << "raftlockctl: lock " << lock_name_ << ": session lost; stopping the command\n";
    SignalAllLocked(SIGTERM);
  }
  if (exited_token_.WaitUntil(After(kill_after_))) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (exited_) return;
    SignalAllLocked(SIGKILL);
  }
  (void)exited_token_.WaitUntil(After(kAfterSigkill));
}

void GuardedCommand::Exited() {
  std::lock_guard<std::mutex> lock(mu_);
  // What the command left running must not outlive the lock. Its processes
  // are raftlockctl's descendants (the subreaper keeps orphans here); a
  // second pass catches one forked by a process the first pass killed.
  for (int pass = 0; pass < 2; ++pass) {
    for (pid_t descendant : Descendants()) {
      if (descendant != pid_) kill(descendant, SIGKILL);
    }
  }
  exited_ = true;
  exited_token_.Cancel("the command exited");
}

bool GuardedCommand::lost() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lost_;
}

}  // namespace raftlock::ctl
