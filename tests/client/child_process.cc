#include "tests/client/child_process.h"

#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace raftlock::testing {

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

int CodeOf(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

ChildProcess::ChildProcess(std::vector<std::string> argv,
                           std::vector<std::pair<std::string, std::string>> env,
                           std::vector<std::string> unset) {
  char tmpl[] = "/tmp/raftlock-child-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  std::vector<std::string> environment;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    bool drop = false;
    for (const auto& [key, value] : env) drop = drop || entry.rfind(key + "=", 0) == 0;
    for (const auto& key : unset) drop = drop || entry.rfind(key + "=", 0) == 0;
    if (!drop) environment.push_back(entry);
  }
  for (const auto& [key, value] : env) environment.push_back(key + "=" + value);
  std::vector<char*> envp;
  for (auto& e : environment) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const std::string out = dir_ + "/stdout";
  const std::string err = dir_ + "/stderr";

  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) signal(s, SIG_DFL);
    int in = open("/dev/null", O_RDONLY);
    int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || o < 0 || e < 0) _exit(126);
    dup2(in, 0);
    dup2(o, 1);
    dup2(e, 2);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !exited_) {
    // SIGTERM first: raftlockctl forwards it to the command it runs (in its
    // own process group), which a SIGKILL of raftlockctl would leave behind.
    kill(pid_, SIGCONT);
    kill(pid_, SIGTERM);
    if (!Wait(std::chrono::milliseconds(3000)).has_value()) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::optional<int> ChildProcess::Wait(std::chrono::milliseconds timeout) {
  if (exited_) return code_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exited_ = true;
      code_ = CodeOf(status);
      return code_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void ChildProcess::Signal(int signal) const {
  if (pid_ > 0 && !exited_) kill(pid_, signal);
}

std::string ChildProcess::Stdout() const { return ReadFile(dir_ + "/stdout"); }
std::string ChildProcess::Stderr() const { return ReadFile(dir_ + "/stderr"); }

bool ChildProcess::WaitForOutput(const std::string& text, std::chrono::milliseconds timeout) {
  return WaitForText(&ChildProcess::Stdout, text, timeout);
}

bool ChildProcess::WaitForStderr(const std::string& text, std::chrono::milliseconds timeout) {
  return WaitForText(&ChildProcess::Stderr, text, timeout);
}

bool ChildProcess::WaitForText(std::string (ChildProcess::*read)() const, const std::string& text,
                               std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if ((this->*read)().find(text) != std::string::npos) return true;
    if (Wait(std::chrono::milliseconds(0)).has_value()) {
      return (this->*read)().find(text) != std::string::npos;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

namespace {

// Writes "<prefix><number>]\r\n" with async-signal-safe calls only.
void WriteMarker(const char* prefix, long number) {
  char text[64];
  size_t n = std::strlen(prefix);
  std::memcpy(text, prefix, n);
  char digits[24];
  size_t d = 0;
  do {
    digits[d++] = static_cast<char>('0' + number % 10);
    number /= 10;
  } while (number > 0);
  while (d > 0) text[n++] = digits[--d];
  text[n++] = ']';
  text[n++] = '\r';
  text[n++] = '\n';
  (void)!write(STDOUT_FILENO, text, n);
}

void WriteText(const char* text) { (void)!write(STDOUT_FILENO, text, std::strlen(text)); }

// The job-control shell (see the header), in the child of forkpty. Only
// async-signal-safe calls: the test process has threads.
[[noreturn]] void RunJobShell(char* const* args) {
  signal(SIGTTOU, SIG_IGN);  // lets the shell hand the terminal around
  const pid_t job = fork();
  if (job == 0) {
    setpgid(0, 0);
    tcsetpgrp(STDIN_FILENO, getpid());  // as the shell does: either may run first
    signal(SIGTTOU, SIG_DFL);
    execv(args[0], args);
    _exit(127);
  }
  setpgid(job, job);
  tcsetpgrp(STDIN_FILENO, job);
  WriteMarker("\r\n[job ", job);
  while (true) {
    int status = 0;
    if (waitpid(job, &status, WUNTRACED) < 0) {
      if (errno == EINTR) continue;
      _exit(126);
    }
    if (WIFSTOPPED(status)) {
      WriteText("\r\n[job stopped]\r\n");
      WriteText("\r\n[job continued]\r\n");
      tcsetpgrp(STDIN_FILENO, job);
      kill(-job, SIGCONT);
      continue;
    }
    tcsetpgrp(STDIN_FILENO, getpgrp());
    WriteMarker("\r\n[job exited ", CodeOf(status));
    while (true) pause();
  }
}

}  // namespace

TerminalProcess::TerminalProcess(std::vector<std::string> argv) {
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  shell_ = forkpty(&terminal_, nullptr, nullptr, nullptr);
  if (shell_ < 0) throw std::runtime_error("forkpty failed");
  if (shell_ == 0) {
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGTSTP, SIGTTIN}) signal(s, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    RunJobShell(args.data());
  }
  fcntl(terminal_, F_SETFL, fcntl(terminal_, F_GETFL) | O_NONBLOCK);
}

TerminalProcess::~TerminalProcess() {
  if (const pid_t job = JobPid(); job > 0) kill(-job, SIGKILL);
  if (shell_ > 0) {
    kill(shell_, SIGKILL);
    waitpid(shell_, nullptr, 0);
  }
  if (terminal_ >= 0) close(terminal_);
}

void TerminalProcess::Type(const std::string& text) {
  (void)!write(terminal_, text.data(), text.size());
}

std::string TerminalProcess::Output() {
  char buffer[4096];
  ssize_t n;
  while ((n = read(terminal_, buffer, sizeof buffer)) > 0) output_.append(buffer, n);
  return output_;
}

bool TerminalProcess::WaitForOutput(const std::string& text, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (Output().find(text) != std::string::npos) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

pid_t TerminalProcess::JobPid() {
  const std::string marker = "[job ";
  const std::string text = Output();
  const size_t at = text.find(marker);
  if (at == std::string::npos || text.find(']', at) == std::string::npos) return -1;
  return static_cast<pid_t>(std::atol(text.c_str() + at + marker.size()));
}

std::optional<int> TerminalProcess::Wait(std::chrono::milliseconds timeout) {
  const std::string marker = "[job exited ";
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const std::string text = Output();
    const size_t at = text.rfind(marker);
    if (at != std::string::npos && text.find(']', at) != std::string::npos) {
      return std::atoi(text.c_str() + at + marker.size());
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

RunResult Run(std::vector<std::string> argv, std::vector<std::pair<std::string, std::string>> env,
              std::chrono::milliseconds timeout) {
  ChildProcess child(std::move(argv), std::move(env));
  RunResult result;
  auto code = child.Wait(timeout);
  if (code) result.code = *code;
  result.out = child.Stdout();
  result.err = child.Stderr();
  return result;
}

}  // namespace raftlock::testing
