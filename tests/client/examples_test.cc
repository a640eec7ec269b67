// The examples in client/examples/ run against a real 3-node cluster: two
// fenced workers take turns with strictly increasing tokens, and two elected
// services take turns leading (issue 6: "the examples should at least build").
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>

#include "tests/client/client_fixture.h"

using namespace raftlock;
using namespace raftlock::testing;

TEST_CASE("examples fenced_worker and elected_service run against a cluster",
          "[client][examples]") {
  TestCluster t;
  SECTION("two fenced_workers: every accepted write carries a token no older than the last") {
    char tmpl[] = "/tmp/raftlock-resource-XXXXXX";
    int fd = mkstemp(tmpl);
    REQUIRE(fd >= 0);
    close(fd);
    const std::string resource = tmpl;
    ChildProcess w1({FENCED_WORKER_PATH, t.Endpoints(), resource, "3"});
    ChildProcess w2({FENCED_WORKER_PATH, t.Endpoints(), resource, "3"});
    auto c1 = w1.Wait(30s);
    auto c2 = w2.Wait(30s);
    INFO(w1.Stderr() << w2.Stderr());
    REQUIRE(c1.has_value());
    REQUIRE(c2.has_value());
    CHECK(*c1 == 0);
    CHECK(*c2 == 0);
    std::ifstream in(resource);
    std::string line;
    uint64_t last = 0;
    int lines = 0;
    std::regex pattern("^token=([0-9]+) worker ([0-9]+) round");
    std::map<uint64_t, std::string> worker_of_token;
    while (std::getline(in, line)) {
      std::smatch match;
      REQUIRE(std::regex_search(line, match, pattern));
      const uint64_t token = std::stoull(match[1].str());
      CHECK(token >= last);
      last = token;
      // One token, one worker: holds never overlap.
      auto [it, inserted] = worker_of_token.emplace(token, match[2].str());
      CHECK(it->second == match[2].str());
      ++lines;
    }
    std::remove(resource.c_str());
    CHECK(lines == 2 * 3 * 3);
    CHECK(worker_of_token.size() == 6);  // six holds, six distinct tokens
  }
  SECTION("two elected_services lead one after the other") {
    ChildProcess s1({ELECTED_SERVICE_PATH, t.Endpoints(), "example/svc", "3"});
    REQUIRE(s1.WaitForOutput("elected", 10s));
    ChildProcess s2({ELECTED_SERVICE_PATH, t.Endpoints(), "example/svc", "3"});
    auto c1 = s1.Wait(20s);
    auto c2 = s2.Wait(20s);
    INFO(s1.Stdout() << s1.Stderr() << s2.Stdout() << s2.Stderr());
    REQUIRE(c1.has_value());
    REQUIRE(c2.has_value());
    CHECK(*c1 == 0);
    CHECK(*c2 == 0);
    std::regex epoch("elected \\(epoch ([0-9]+), token ([0-9]+)\\)");
    std::smatch m1, m2;
    const std::string out1 = s1.Stdout(), out2 = s2.Stdout();
    REQUIRE(std::regex_search(out1, m1, epoch));
    REQUIRE(std::regex_search(out2, m2, epoch));
    CHECK(std::stoull(m2[1].str()) > std::stoull(m1[1].str()));
    CHECK(std::stoull(m2[2].str()) > std::stoull(m1[2].str()));
    CHECK(out1.find("resigned: OK") != std::string::npos);
  }
}
