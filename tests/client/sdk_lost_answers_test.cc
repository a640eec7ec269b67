// The SDK's clean-up when answers are lost: a gRPC interceptor lets chosen
// calls reach the cluster and then replaces their answer with UNAVAILABLE,
// so the SDK cannot know whether they applied (docs/semantics.md §5). The
// same interceptor makes a session report lost while its lease still lives,
// to check what a grant arriving after the loss does. Real 3-node cluster.
#include <grpcpp/support/client_interceptor.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <future>
#include <memory>
#include <string>

#include "raftlock/election.h"
#include "raftlock/mutex.h"
#include "tests/client/client_fixture.h"

using namespace raftlock;
using namespace raftlock::testing;

namespace {

namespace gx = grpc::experimental;

// Which answers are lost: Acquire calls that wait on the server, Release
// calls, KeepAlive streams. With `misdirect_revokes`, a Revoke is sent for
// another (unknown) lease, so the session's own lease stays alive.
struct LossRule {
  std::atomic<bool> waiting_acquires{false};
  std::atomic<bool> releases{false};
  std::atomic<bool> keepalives{false};
  std::atomic<bool> misdirect_revokes{false};
  std::atomic<int> lost{0};

  bool Loses(const std::string& method, const google::protobuf::Message& request) const {
    if (releases && method.ends_with("/Release")) return true;
    if (keepalives && method.ends_with("/KeepAlive")) return true;
    if (!waiting_acquires || !method.ends_with("/Acquire")) return false;
    const auto* acquire = dynamic_cast<const v1::LockAcquireRequest*>(&request);
    return acquire != nullptr && acquire->wait_timeout_ms() > 0;
  }
};

class LoseAnswers : public gx::Interceptor {
 public:
  LoseAnswers(gx::ClientRpcInfo* info, std::shared_ptr<LossRule> rule)
      : method_(info->method()), rule_(std::move(rule)) {}

  void Intercept(gx::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(gx::InterceptionHookPoints::PRE_SEND_MESSAGE)) {
      const auto* request =
          static_cast<const google::protobuf::Message*>(methods->GetSendMessage());
      lose_ = request != nullptr && rule_->Loses(method_, *request);
      if (rule_->misdirect_revokes && method_.ends_with("/Revoke") && request != nullptr) {
        misdirected_.CopyFrom(*request);
        misdirected_.set_lease_id(misdirected_.lease_id() ^ (uint64_t{1} << 62));
        methods->ModifySendMessage(&misdirected_);
      }
    }
    if (lose_ &&
        methods->QueryInterceptionHookPoint(gx::InterceptionHookPoints::POST_RECV_STATUS)) {
      *methods->GetRecvStatus() = grpc::Status(grpc::StatusCode::UNAVAILABLE, "answer lost (test)");
      rule_->lost++;
    }
    methods->Proceed();
  }

 private:
  const std::string method_;
  const std::shared_ptr<LossRule> rule_;
  bool lose_ = false;
  v1::LeaseRevokeRequest misdirected_;  // sent instead of a Revoke; outlives the send
};

class LoseAnswersFactory : public gx::ClientInterceptorFactoryInterface {
 public:
  explicit LoseAnswersFactory(std::shared_ptr<LossRule> rule) : rule_(std::move(rule)) {}
  gx::Interceptor* CreateClientInterceptor(gx::ClientRpcInfo* info) override {
    return new LoseAnswers(info, rule_);
  }

 private:
  const std::shared_ptr<LossRule> rule_;
};

std::shared_ptr<Client> LossyClient(const TestCluster& t, const std::shared_ptr<LossRule>& rule) {
  ClientOptions options;
  options.endpoints = t.cluster.ClientAddresses();
  options.attempt_timeout = std::chrono::milliseconds(500);
  options.interceptors = [rule] {
    std::vector<std::unique_ptr<gx::ClientInterceptorFactoryInterface>> factories;
    factories.push_back(std::make_unique<LoseAnswersFactory>(rule));
    return factories;
  };
  auto client = Client::Create(std::move(options));
  REQUIRE(client.ok());
  return *client;
}

// A session of a lossy client that can be made to report lost while its
// lease lives on at the server: its keepalives apply but their answers are
// lost, and its revoke after the loss is sent for another lease.
struct LosableSession {
  explicit LosableSession(const TestCluster& t)
      : rule(std::make_shared<LossRule>()),
        client(LossyClient(t, rule)),
        session(t.NewSession(client, std::chrono::seconds(5), [this](SessionState state) {
          if (state == SessionState::kLost) lost = true;
        })) {}

  // Returns once the session reported lost (REQUIREd within 10 s).
  void Lose() {
    rule->keepalives = true;
    rule->misdirect_revokes = true;
    REQUIRE(Eventually(std::chrono::seconds(10), [&] { return lost.load(); }));
  }

  std::atomic<bool> lost{false};
  std::shared_ptr<LossRule> rule;
  std::shared_ptr<Client> client;
  std::unique_ptr<Session> session;
};

}  // namespace

TEST_CASE(
    "lost answers: clean-up keeps an earlier hold, and a retried Unlock gets its first answer",
    "[client][sdk][exactly-once]") {
  TestCluster t;
  auto rule = std::make_shared<LossRule>();
  auto client = LossyClient(t, rule);
  auto observer = t.NewClient();
  auto session = t.NewSession(client);
  Mutex mutex(*session, "lost/answers");
  REQUIRE(mutex.Lock(After(5s)).ok());
  const uint64_t token = mutex.token();

  // Rule: a Lock of a hold this Mutex has answers that hold again. When the
  // answers are lost, the clean-up's probe sees the same token and must not
  // release it: the Mutex still holds the lock.
  rule->waiting_acquires = true;
  absl::Status again = mutex.Lock(After(2s));
  rule->waiting_acquires = false;
  INFO(again.ToString());
  CHECK_FALSE(again.ok());
  CHECK(rule->lost > 0);
  CHECK(mutex.held());
  auto described = observer->LockDescribe("lost/answers", After(5s));
  REQUIRE(described.ok());
  REQUIRE(described->lock().holders_size() == 1);
  CHECK(described->lock().holders(0).token() == token);

  // Rule: an Unlock whose answer is lost keeps the hold; retried, it re-sends
  // the same write and gets the first answer (OK), not NOT_HELD.
  rule->releases = true;
  absl::Status unlocked = mutex.Unlock(After(2s));
  rule->releases = false;
  INFO(unlocked.ToString());
  CHECK(unlocked.code() == absl::StatusCode::kUnavailable);
  CHECK(mutex.held());
  absl::Status retried = mutex.Unlock(After(5s));
  INFO(retried.ToString());
  CHECK(retried.ok());
  CHECK_FALSE(mutex.held());
  auto after = observer->LockDescribe("lost/answers", After(5s));
  REQUIRE(after.ok());
  CHECK_FALSE(after->found());
}

TEST_CASE("a lock granted after the session was lost is given back, not reported held",
          "[client][sdk][session]") {
  TestCluster t;
  auto observer = t.NewClient();
  auto holder_session = t.NewSession(observer);
  Mutex holder(*holder_session, "lost/grant");
  REQUIRE(holder.Lock(After(5s)).ok());
  LosableSession losable(t);
  Mutex waiter(*losable.session, "lost/grant");
  auto waited = std::async(std::launch::async, [&] { return waiter.Lock(After(30s)); });
  REQUIRE(Eventually(5s, [&] {
    auto d = observer->LockDescribe("lost/grant", After(2s));
    return d.ok() && d->lock().waiters_size() == 1;
  }));
  losable.Lose();

  // Rule: once a session reports lost, nothing is held through it. A grant
  // that arrives now is given back, and the call fails FAILED_PRECONDITION:
  // the lock is free although the lease still lives.
  REQUIRE(holder.Unlock(After(5s)).ok());
  REQUIRE(waited.wait_for(10s) == std::future_status::ready);
  absl::Status status = waited.get();
  INFO(status.ToString());
  CHECK(status.code() == absl::StatusCode::kFailedPrecondition);
  CHECK_FALSE(waiter.held());
  auto lease = observer->LeaseTimeToLive(losable.session->lease_id(), After(2s));
  REQUIRE(lease.ok());
  CHECK(lease->found());
  auto described = observer->LockDescribe("lost/grant", After(2s));
  REQUIRE(described.ok());
  CHECK_FALSE(described->found());
}

TEST_CASE("a leadership won after the session was lost is resigned, not reported leading",
          "[client][sdk][session]") {
  TestCluster t;
  auto observer = t.NewClient();
  auto leader_session = t.NewSession(observer);
  Election leader(*leader_session, "lost/election");
  REQUIRE(leader.Campaign("first", After(5s)).ok());
  LosableSession losable(t);
  Election candidate(*losable.session, "lost/election");
  auto campaigned =
      std::async(std::launch::async, [&] { return candidate.Campaign("second", After(30s)); });
  REQUIRE(Eventually(5s, [&] {
    auto info = observer->Leader("lost/election", After(2s));
    return info.ok() && info->election().candidates_size() == 1;
  }));
  losable.Lose();

  // Rule: as for locks: a leadership that arrives after the loss is resigned
  // and the call fails FAILED_PRECONDITION, so nobody leads on a lost session.
  REQUIRE(leader.Resign(After(5s)).ok());
  REQUIRE(campaigned.wait_for(10s) == std::future_status::ready);
  absl::Status status = campaigned.get();
  INFO(status.ToString());
  CHECK(status.code() == absl::StatusCode::kFailedPrecondition);
  CHECK_FALSE(candidate.leading());
  auto lease = observer->LeaseTimeToLive(losable.session->lease_id(), After(2s));
  REQUIRE(lease.ok());
  CHECK(lease->found());
  auto info = observer->Leader("lost/election", After(2s));
  REQUIRE(info.ok());
  CHECK_FALSE(info->election().has_leader());
}
