// ProcessCluster: real raftlockd processes on 127.0.0.1 for integration tests.
//
// Each cluster gets free ports and a fresh temporary directory. Nodes can be
// killed (SIGKILL), paused (SIGSTOP), resumed, terminated (SIGTERM) and
// restarted. The destructor SIGKILLs every process and removes the directory,
// so a failing test never leaves servers behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proto/cluster.grpc.pb.h"

namespace raftlock::testing {

class ProcessCluster {
 public:
  // `extra_flags` are passed to every raftlockd (e.g. {"--snapshot-interval", "50"}).
  explicit ProcessCluster(int size, std::vector<std::string> extra_flags = {});
  ~ProcessCluster();
  ProcessCluster(const ProcessCluster&) = delete;
  ProcessCluster& operator=(const ProcessCluster&) = delete;

  int size() const { return size_; }
  void StartAll();
  // Starts node `id` (1-based) with its data directory as it is. The node is
  // SIGKILLed if the calling thread exits first (PR_SET_PDEATHSIG), so call
  // it from the test's own thread.
  void Start(int id);
  void Kill(int id);                // SIGKILL and reap
  void Pause(int id);               // SIGSTOP
  void Resume(int id);              // SIGCONT
  void Signal(int id, int signal);  // sends `signal`, does not wait
  // SIGTERM; waits up to `wait` for a clean exit, returns its exit status
  // (-1 if it had to be killed).
  int Terminate(int id, std::chrono::milliseconds wait = std::chrono::milliseconds(5000));
  // Waits up to `wait` for node `id` to exit by itself and returns its exit
  // status; -1 if it was not running, or had to be killed after `wait`.
  int WaitExit(int id, std::chrono::milliseconds wait);
  bool Running(int id) const;

  std::string ClientAddress(int id) const;
  std::string PeerAddress(int id) const;
  std::vector<std::string> ClientAddresses() const;
  std::string DataDir(int id) const;
  std::string LogPath(int id) const;

  // Cluster.Status of node `id` (deadline 1 s); nullopt if unreachable.
  std::optional<v1::StatusResponse> Status(int id) const;
  // Cluster.TransferLeadership(target) sent to node `via` (deadline 5 s).
  grpc::Status TransferLeadership(int via, int target,
                                  v1::TransferLeadershipResponse* response = nullptr) const;
  // Waits until every running, unpaused node reports the same leader, and
  // returns it (0 on timeout). `exclude` nodes are not asked.
  int WaitForLeader(std::chrono::milliseconds timeout, const std::vector<int>& exclude = {}) const;
  // The last lines of a node's log (for failure messages).
  std::string LogTail(int id, int lines = 20) const;

 private:
  int size_;
  std::vector<std::string> extra_flags_;
  std::string root_;
  int peer_base_ = 0;
  int client_base_ = 0;
  std::vector<pid_t> pids_;
  std::vector<bool> paused_;
};

}  // namespace raftlock::testing
