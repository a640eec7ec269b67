// The SDK's clean-up when answers are lost: a gRPC interceptor lets chosen
// calls reach the cluster and then replaces their answer with UNAVAILABLE,
// so the SDK cannot know whether they applied (docs/semantics.md §5). Real
// 3-node cluster.
#include <grpcpp/support/client_interceptor.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "raftlock/mutex.h"
#include "tests/client/client_fixture.h"

using namespace raftlock;
using namespace raftlock::testing;

namespace {

namespace gx = grpc::experimental;

// Which answers are lost: Acquire calls that wait on the server, Release calls.
struct LossRule {
  std::atomic<bool> waiting_acquires{false};
  std::atomic<bool> releases{false};
  std::atomic<int> lost{0};

  bool Loses(const std::string& method, const google::protobuf::Message& request) const {
    if (releases && method.ends_with("/Release")) return true;
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
