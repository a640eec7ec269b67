// raftlockctl: shared helpers (durations, errors, output, signals).
#include <google/protobuf/util/json_util.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <regex>
#include <thread>

#include "client/ctl/ctl.h"

namespace raftlock::ctl {

const char* ExitCodesHelp() {
  return "Exit codes:\n"
         "  0  success\n"
         "  1  other error (not found, failed precondition, ...)\n"
         "  2  bad input (usage, invalid argument)\n"
         "  3  not acquired (lock busy, not elected, token not valid)\n"
         "  4  timeout (not acquired or not done within --timeout)\n"
         "  5  unavailable (no replica or no leader reachable)\n"
         "  6  session lost while holding (the command was stopped)\n"
         "  lock -- CMD: CMD's own exit status (128+N if killed by signal N)\n";
}

std::optional<std::chrono::milliseconds> ParseDuration(const std::string& text) {
  static const std::regex kPattern(R"(^\s*([0-9]+(\.[0-9]+)?)\s*(ms|s|m|h)?\s*$)");
  std::smatch match;
  if (!std::regex_match(text, match, kPattern)) return std::nullopt;
  const double value = std::stod(match[1].str());
  const std::string unit = match[3].matched ? match[3].str() : "s";
  double ms = value;
  if (unit == "s") ms = value * 1000;
  if (unit == "m") ms = value * 60 * 1000;
  if (unit == "h") ms = value * 3600 * 1000;
  if (ms > 365.0 * 24 * 3600 * 1000) return std::nullopt;
  return std::chrono::milliseconds(static_cast<int64_t>(ms));
}

std::optional<std::chrono::milliseconds> TimeoutOr(const Globals& globals,
                                                   std::chrono::milliseconds fallback) {
  if (globals.timeout.empty()) return fallback;
  auto parsed = ParseDuration(globals.timeout);
  if (!parsed) {
    std::cerr << "raftlockctl: --timeout: '" << globals.timeout
              << "' is not a duration (e.g. 500ms, 2s, 1m)\n";
  }
  return parsed;
}

int ExitCodeFor(const absl::Status& status) {
  if (ErrorReason(status) == "NOT_ACQUIRED_REASON_BUSY") return kExitNotAcquired;
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return kExitBadInput;
    case absl::StatusCode::kDeadlineExceeded:
      return kExitTimeout;
    case absl::StatusCode::kUnavailable:
      return kExitUnavailable;
    default:
      return kExitError;
  }
}

int Fail(const std::string& what, const absl::Status& status) {
  std::string reason = ErrorReason(status);
  std::cerr << "raftlockctl: " << what << ": " << absl::StatusCodeToString(status.code()) << ": "
            << status.message();
  if (!reason.empty()) std::cerr << " [" << reason << "]";
  std::cerr << "\n";
  return ExitCodeFor(status);
}

std::shared_ptr<Client> Connect(const Globals& globals) {
  ClientOptions options;
  options.endpoints = Client::ParseEndpoints(globals.endpoints);
  auto client = Client::Create(std::move(options));
  if (!client.ok()) {
    Fail("--endpoints", client.status());
    return nullptr;
  }
  return *client;
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

namespace {

// Length of the well-formed UTF-8 sequence at text[i] (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF), or 0 if none.
size_t Utf8SequenceAt(const std::string& text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;  // allowed range of the second byte
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  if (byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return length;
}

}  // namespace

std::string JsonString(const std::string& text) {
  std::string out = "\"";
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      const size_t length = Utf8SequenceAt(text, i);
      if (length == 0) {
        out += "\\ufffd";  // not UTF-8 (a bytes value): JSON text must be
        continue;          // Unicode, so the byte becomes U+FFFD
      }
      out.append(text, i, length);
      i += length - 1;
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
  std::cout.flush();
}

// ---------------------------------------------------------------- signals

namespace {

CancellationToken& InterruptToken() {
  static CancellationToken token;
  return token;
}
std::mutex g_forward_mu;
std::function<void(int, bool)> g_forward;  // guarded by g_forward_mu

std::function<void(int, bool)> Forwarder() {
  std::lock_guard<std::mutex> lock(g_forward_mu);
  return g_forward;
}
std::atomic<int> g_last_signal{0};
std::atomic<bool> g_interrupts_watched{false};

}  // namespace

void InstallSignalWatcher() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // inherited by every later thread
  std::thread([set] {
    while (true) {
      siginfo_t info;
      const int signal = sigwaitinfo(&set, &info);
      if (signal < 0) continue;
      g_last_signal = signal;
      if (const auto forward = Forwarder()) forward(signal, info.si_code == SI_KERNEL);
      if (!g_interrupts_watched.load()) {
        std::fprintf(stderr, "raftlockctl: interrupted by signal %d\n", signal);
        std::_Exit(128 + signal);
      }
      InterruptToken().Cancel(std::string("interrupted by signal ") + std::to_string(signal));
    }
  }).detach();
}

CancellationToken Interrupted() { return InterruptToken(); }
void WatchInterrupts() { g_interrupts_watched = true; }
void ForwardSignalsTo(std::function<void(int, bool)> forward) {
  std::lock_guard<std::mutex> lock(g_forward_mu);
  g_forward = std::move(forward);
}
int LastSignal() { return g_last_signal.load(); }

}  // namespace raftlock::ctl
