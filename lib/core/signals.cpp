// signals.cpp -- async-signal-safe handler: only flags, unlink() and _exit().
#include "core/signals.hpp"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <mutex>

#include "core/error.hpp"

namespace treerpo::signals {
namespace {
constexpr int kMaxTemps = 16;
constexpr int kMaxPath = 4096;
std::atomic<int> g_signal{0};
std::atomic<int> g_count{0};
char g_temps[kMaxTemps][kMaxPath];
std::atomic<bool> g_used[kMaxTemps];
std::mutex g_mutex;

extern "C" void on_signal(int signo) {
  g_signal.store(signo);
  if (g_count.fetch_add(1) >= 1) {  // second signal: clean up what we can, stop now
    for (int i = 0; i < kMaxTemps; ++i)
      if (g_used[i].load()) unlink(g_temps[i]);
    _exit(128 + signo);
  }
}
}  // namespace

void install() {
  static bool done = false;
  if (done) return;
  done = true;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int pending() { return g_signal.load(); }

thread_local int g_allow = 0;

void check() {
  if (g_allow > 0) return;
  if (int s = g_signal.load()) throw Interrupted(s);
}

AllowPublish::AllowPublish() { ++g_allow; }
AllowPublish::~AllowPublish() { --g_allow; }

void register_temp_file(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (path.size() >= kMaxPath) return;
  for (int i = 0; i < kMaxTemps; ++i) {
    if (!g_used[i].load()) {
      std::memcpy(g_temps[i], path.c_str(), path.size() + 1);
      g_used[i].store(true);
      return;
    }
  }
}

void unregister_temp_file(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_mutex);
  for (int i = 0; i < kMaxTemps; ++i)
    if (g_used[i].load() && path == g_temps[i]) g_used[i].store(false);
}
}  // namespace treerpo::signals
