#include "tests/integration/process_cluster.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#ifndef RAFTLOCKD_PATH
#error "RAFTLOCKD_PATH must name the raftlockd binary"
#endif

namespace raftlock::testing {

namespace {

bool PortFree(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// Picks a base so that base+1..base+n are free, drawing from a range that
// parallel test processes are unlikely to share (seeded by pid and time).
int PickPortBase(int n) {
  std::mt19937 rng(
      static_cast<unsigned>(getpid()) ^
      static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count()));
  std::uniform_int_distribution<int> dist(200, 550);
  for (int attempt = 0; attempt < 200; ++attempt) {
    int base = dist(rng) * 100;
    bool all_free = true;
    for (int i = 1; i <= n && all_free; ++i) all_free = PortFree(base + i);
    if (all_free) return base;
  }
  throw std::runtime_error("no free ports for a test cluster");
}

}  // namespace

ProcessCluster::ProcessCluster(int size, std::vector<std::string> extra_flags)
    : size_(size), extra_flags_(std::move(extra_flags)), pids_(size + 1, 0), paused_(size + 1) {
  char tmpl[] = "/tmp/raftlock-it-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  root_ = tmpl;
  int base = PickPortBase(2 * size + 10);
  peer_base_ = base;
  client_base_ = base + size + 5;
}

ProcessCluster::~ProcessCluster() {
  for (int id = 1; id <= size_; ++id) {
    if (pids_[id] > 0) {
      kill(pids_[id], SIGKILL);
      waitpid(pids_[id], nullptr, 0);
      pids_[id] = 0;
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(root_, ec);
}

std::string ProcessCluster::ClientAddress(int id) const {
  return "127.0.0.1:" + std::to_string(client_base_ + id);
}

std::string ProcessCluster::PeerAddress(int id) const {
  return "127.0.0.1:" + std::to_string(peer_base_ + id);
}

std::vector<std::string> ProcessCluster::ClientAddresses() const {
  std::vector<std::string> out;
  for (int id = 1; id <= size_; ++id) out.push_back(ClientAddress(id));
  return out;
}

std::string ProcessCluster::DataDir(int id) const { return root_ + "/n" + std::to_string(id); }
std::string ProcessCluster::LogPath(int id) const {
  return root_ + "/n" + std::to_string(id) + ".log";
}

void ProcessCluster::StartAll() {
  for (int id = 1; id <= size_; ++id) Start(id);
}

void ProcessCluster::Start(int id) {
  if (pids_[id] > 0) throw std::runtime_error("node already running");
  std::string members;
  for (int i = 1; i <= size_; ++i) {
    if (!members.empty()) members += ",";
    members +=
        std::to_string(i) + "=127.0.0.1:" + std::to_string(peer_base_ + i) + "/" + ClientAddress(i);
  }
  std::vector<std::string> args = {RAFTLOCKD_PATH, "--cluster-id",     "it",
                                   "--node-id",    std::to_string(id), "--data-dir",
                                   DataDir(id),    "--members",        members};
  for (const auto& flag : extra_flags_) args.push_back(flag);
  std::string log = LogPath(id);
  const pid_t test_process = getpid();
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    // A test that crashes (abort, std::terminate) runs no destructor: the
    // node dies with it instead of outliving the test.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != test_process) _exit(127);
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  pids_[id] = pid;
  paused_[id] = false;
}

void ProcessCluster::Kill(int id) {
  if (pids_[id] <= 0) return;
  kill(pids_[id], SIGKILL);
  waitpid(pids_[id], nullptr, 0);
  pids_[id] = 0;
  paused_[id] = false;
}

void ProcessCluster::Pause(int id) {
  if (pids_[id] > 0) {
    kill(pids_[id], SIGSTOP);
    paused_[id] = true;
  }
}

void ProcessCluster::Signal(int id, int signal) {
  if (pids_[id] > 0) kill(pids_[id], signal);
}

void ProcessCluster::Resume(int id) {
  if (pids_[id] > 0) {
    kill(pids_[id], SIGCONT);
    paused_[id] = false;
  }
}

int ProcessCluster::Terminate(int id, std::chrono::milliseconds wait) {
  if (pids_[id] <= 0) return -1;
  kill(pids_[id], SIGCONT);
  kill(pids_[id], SIGTERM);
  return WaitExit(id, wait);
}

int ProcessCluster::WaitExit(int id, std::chrono::milliseconds wait) {
  if (pids_[id] <= 0) return -1;
  auto deadline = std::chrono::steady_clock::now() + wait;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    pid_t r = waitpid(pids_[id], &status, WNOHANG);
    if (r == pids_[id]) {
      pids_[id] = 0;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Kill(id);
  return -1;
}

bool ProcessCluster::Running(int id) const { return pids_[id] > 0; }

std::optional<v1::StatusResponse> ProcessCluster::Status(int id) const {
  auto channel = grpc::CreateChannel(ClientAddress(id), grpc::InsecureChannelCredentials());
  auto stub = v1::Cluster::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
  v1::StatusResponse response;
  grpc::Status status = stub->Status(&context, v1::StatusRequest(), &response);
  if (!status.ok()) return std::nullopt;
  return response;
}

grpc::Status ProcessCluster::TransferLeadership(int via, int target,
                                                v1::TransferLeadershipResponse* response) const {
  auto channel = grpc::CreateChannel(ClientAddress(via), grpc::InsecureChannelCredentials());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::TransferLeadershipRequest request;
  request.set_target_id(target);
  v1::TransferLeadershipResponse ignored;
  return v1::Cluster::NewStub(channel)->TransferLeadership(&context, request,
                                                           response ? response : &ignored);
}

int ProcessCluster::WaitForLeader(std::chrono::milliseconds timeout,
                                  const std::vector<int>& exclude) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::map<uint64_t, int> votes;
    int asked = 0;
    bool leader_confirmed = false;
    uint64_t leader = 0;
    for (int id = 1; id <= size_; ++id) {
      if (pids_[id] <= 0 || paused_[id]) continue;
      if (std::find(exclude.begin(), exclude.end(), id) != exclude.end()) continue;
      ++asked;
      auto status = Status(id);
      if (!status) continue;
      votes[status->leader_id()]++;
      if (status->role() == v1::ROLE_LEADER) {
        leader_confirmed = true;
        leader = status->node_id();
      }
    }
    if (leader_confirmed && votes[leader] == asked) return static_cast<int>(leader);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return 0;
}

std::string ProcessCluster::LogTail(int id, int lines) const {
  std::ifstream in(LogPath(id));
  std::vector<std::string> all;
  std::string line;
  while (std::getline(in, line)) all.push_back(line);
  std::ostringstream out;
  for (size_t i = all.size() > static_cast<size_t>(lines) ? all.size() - lines : 0; i < all.size();
       ++i) {
    out << all[i] << "\n";
  }
  return out.str();
}

}  // namespace raftlock::testing
