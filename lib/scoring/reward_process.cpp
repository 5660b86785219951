// reward_process.cpp -- fork/exec with a socket as the program's stdin and stdout (so that a
// write to a program that died fails with EPIPE instead of killing us with SIGPIPE), a pipe for
// its stderr, and poll() with one deadline per exchange.
#include "scoring/reward_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/error.hpp"

namespace treerpo::scoring {
namespace {
using Clock = std::chrono::steady_clock;

std::string base64(const std::uint8_t* data, std::size_t n) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  for (std::size_t i = 0; i < n; i += 3) {
    const std::uint32_t v = (std::uint32_t(data[i]) << 16) | (i + 1 < n ? std::uint32_t(data[i + 1]) << 8 : 0) |
                            (i + 2 < n ? std::uint32_t(data[i + 2]) : 0);
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += i + 1 < n ? table[(v >> 6) & 63] : '=';
    out += i + 2 < n ? table[v & 63] : '=';
  }
  return out;
}

void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

std::string last_line(const std::string& text) {
  std::string line;
  std::size_t end = text.size();
  while (end > 0) {
    const auto start = text.rfind('\n', end - 1);
    const auto b = start == std::string::npos ? 0 : start + 1;
    line = text.substr(b, end - b);
    if (line.find_first_not_of(" \t\r") != std::string::npos) break;
    if (b == 0) break;
    end = b - 1;
  }
  return line.substr(0, 300);
}
}  // namespace

RewardProcess::RewardProcess(std::vector<std::string> argv, std::chrono::milliseconds timeout)
    : argv_(std::move(argv)), timeout_(timeout) {
  if (argv_.empty() || argv_[0].empty()) throw UsageError("--reward-process: give the program to run");
  int sv[2], errp[2], execp[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 || pipe2(errp, O_CLOEXEC) != 0 ||
      pipe2(execp, O_CLOEXEC) != 0)
    throw ResourceError(with_errno("--reward-process: cannot create pipes", errno));
  std::vector<char*> args;
  for (auto& a : argv_) args.push_back(a.data());
  args.push_back(nullptr);
  pid_ = fork();
  if (pid_ < 0) throw ResourceError(with_errno("--reward-process: fork failed", errno));
  if (pid_ == 0) {  // the child: only async-signal-safe calls from here
    dup2(sv[1], STDIN_FILENO);
    dup2(sv[1], STDOUT_FILENO);
    dup2(errp[1], STDERR_FILENO);
    signal(SIGPIPE, SIG_DFL);
    execvp(args[0], args.data());
    const int e = errno;
    (void)!write(execp[1], &e, sizeof e);
    _exit(127);
  }
  close(sv[1]);
  close(errp[1]);
  close(execp[1]);
  io_ = sv[0];
  err_ = errp[0];
  int exec_errno = 0;
  const auto got = read(execp[0], &exec_errno, sizeof exec_errno);
  close(execp[0]);
  if (got == sizeof exec_errno) {
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
    close(io_);
    close(err_);
    io_ = err_ = -1;
    throw NoInputError(with_errno("--reward-process: " + argv_[0] + ": cannot run", exec_errno));
  }
  set_nonblocking(io_);
  set_nonblocking(err_);
  const auto reply = nlohmann::json::parse(
      exchange(nlohmann::json{{"type", "hello"}, {"protocol", "treerpo-reward"}, {"version", 1}}.dump()), nullptr,
      false);
  if (!reply.is_object() || reply.value("type", "") != "hello" || reply.value("version", 0) != 1)
    throw DataError(describe_failure("expected {\"type\": \"hello\", \"version\": 1} as its first line"));
  name_ = reply.value("name", "");
  if (reply.contains("settings")) settings_ = reply["settings"].dump();
}

RewardProcess::~RewardProcess() {
  kill_child();
  if (io_ >= 0) close(io_);
  if (err_ >= 0) close(err_);
}

void RewardProcess::kill_child() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  for (int i = 0; i < 50; ++i) {  // up to 0.5 s for a clean exit
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void RewardProcess::read_available(int fd, std::string& buffer) {
  char chunk[65536];
  for (;;) {
    const auto n = fd == io_ ? recv(fd, chunk, sizeof chunk, 0) : read(fd, chunk, sizeof chunk);
    if (n > 0) {
      buffer.append(chunk, static_cast<std::size_t>(n));
      if (fd == err_ && buffer.size() > (1u << 16)) buffer.erase(0, buffer.size() - (1u << 16));
      continue;
    }
    if (n == 0) {  // end of stream
      if (fd == err_) {
        close(err_);
        err_ = -1;
      } else {
        throw ResourceError(describe_failure("closed its standard output"));
      }
    }
    return;  // EAGAIN or an error: nothing more now
  }
}

std::string RewardProcess::describe_failure(const std::string& what) {
  std::string status;
  if (pid_ > 0) {
    int st = 0;
    // A program that closed its output is usually exiting: give it a moment to be reaped.
    for (int i = 0; i < 20 && status.empty(); ++i) {
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        status = WIFEXITED(st) ? "exit status " + std::to_string(WEXITSTATUS(st))
                               : "killed by signal " + std::to_string(WTERMSIG(st));
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  }
  if (err_ >= 0) read_available(err_, err_buffer_);
  std::string msg = "reward process " + argv_[0] + ": " + what;
  if (!status.empty()) msg += " (" + status + ")";
  const auto err = last_line(err_buffer_);
  if (!err.empty()) msg += "; its stderr: " + err;
  return msg;
}

std::string RewardProcess::exchange(const std::string& line) {
  const std::string request = line + "\n";
  std::size_t written = 0;
  const auto deadline = Clock::now() + timeout_;
  for (;;) {
    const auto newline = out_buffer_.find('\n');
    if (newline != std::string::npos && written == request.size()) {
      std::string reply = out_buffer_.substr(0, newline);
      out_buffer_.erase(0, newline + 1);
      return reply;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      const auto msg =
          describe_failure("no reply within " + std::to_string(timeout_.count() / 1000.0).substr(0, 5) + " s");
      kill_child();
      throw ResourceError(msg);
    }
    pollfd fds[2] = {{io_, static_cast<short>(POLLIN | (written < request.size() ? POLLOUT : 0)), 0},
                     {err_, POLLIN, 0}};
    const int ready = poll(fds, err_ >= 0 ? 2 : 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (ready < 0) {
      if (errno == EINTR) continue;
      throw ResourceError(with_errno("reward process: poll failed", errno));
    }
    if (err_ >= 0 && (fds[1].revents & (POLLIN | POLLHUP))) read_available(err_, err_buffer_);
    if (fds[0].revents & POLLOUT) {
      const auto n = send(io_, request.data() + written, request.size() - written, MSG_NOSIGNAL);
      if (n > 0) written += static_cast<std::size_t>(n);
      else if (n < 0 && errno != EAGAIN && errno != EINTR)
        throw ResourceError(describe_failure("stopped reading its input"));
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) read_available(io_, out_buffer_);
  }
}

std::vector<double> RewardProcess::score(const std::vector<std::string>& prompts,
                                         const std::vector<shapes::Image>& images) {
  nlohmann::json imgs = nlohmann::json::array();
  for (const auto& im : images)
    imgs.push_back({{"height", im.height}, {"width", im.width}, {"data", base64(im.rgb.data(), im.rgb.size())}});
  const auto id = next_id_++;
  const auto line =
      exchange(nlohmann::json{{"type", "score"}, {"id", id}, {"prompts", prompts}, {"images", imgs}}.dump());
  const auto reply = nlohmann::json::parse(line, nullptr, false);
  if (reply.is_discarded()) {
    const bool nonfinite = line.find("NaN") != std::string::npos || line.find("Infinity") != std::string::npos;
    throw DataError(describe_failure(nonfinite ? "sent a non-finite score (NaN or Infinity)"
                                               : "sent a line that is not JSON: " + line.substr(0, 80)));
  }
  if (reply.value("type", "") == "error")
    throw DataError(describe_failure("reported an error: " + reply.value("message", std::string("(no message)"))));
  if (reply.value("type", "") != "scores" || reply.value("id", std::int64_t{-1}) != id || !reply.contains("scores") ||
      !reply["scores"].is_array())
    throw DataError(
        describe_failure("expected {\"type\": \"scores\", \"id\": " + std::to_string(id) + ", \"scores\": [...]}"));
  const auto& s = reply["scores"];
  if (s.size() != images.size())
    throw DataError(describe_failure("sent " + std::to_string(s.size()) + " scores for " +
                                     std::to_string(images.size()) + " images"));
  std::vector<double> out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (!s[i].is_number() || !std::isfinite(s[i].get<double>()))
      throw DataError(describe_failure("sent a non-finite score for image " + std::to_string(i) + ": " + s[i].dump()));
    out.push_back(s[i].get<double>());
  }
  return out;
}

void RewardProcess::finish() {
  if (pid_ <= 0) return;
  const std::string bye = nlohmann::json{{"type", "bye"}}.dump() + "\n";
  (void)send(io_, bye.data(), bye.size(), MSG_NOSIGNAL);
  shutdown(io_, SHUT_WR);
  const auto deadline = Clock::now() + timeout_;
  int st = 0;
  while (waitpid(pid_, &st, WNOHANG) != pid_) {
    if (Clock::now() > deadline) {
      const auto msg = describe_failure("did not exit after bye");
      kill_child();
      throw ResourceError(msg);
    }
    if (err_ >= 0) read_available(err_, err_buffer_);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  pid_ = -1;
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    throw ResourceError(describe_failure(WIFEXITED(st) ? "exited with status " + std::to_string(WEXITSTATUS(st))
                                                       : "was killed by signal " + std::to_string(WTERMSIG(st))));
}

}  // namespace treerpo::scoring
