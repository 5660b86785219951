// log.cpp -- stderr logger; flushes stdout first so data and messages never interleave badly.
#include "core/log.hpp"

#include <cstdio>
#include <mutex>

namespace treerpo::log {
namespace {
std::string g_program = "treerpo";
Level g_level = Level::warning;
std::mutex g_mutex;

void emit(const char* tag, const std::string& message) {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fflush(stdout);
  if (tag) std::fprintf(stderr, "%s: %s: %s\n", g_program.c_str(), tag, message.c_str());
  else std::fprintf(stderr, "%s: %s\n", g_program.c_str(), message.c_str());
  std::fflush(stderr);
}
}  // namespace

void set_program(const std::string& name) { g_program = name; }
void set_level(Level level) { g_level = level; }
Level level() { return g_level; }
bool enabled(Level l) { return static_cast<int>(l) <= static_cast<int>(g_level); }

void error(const std::string& m) { emit("error", m); }
void warning(const std::string& m) { if (enabled(Level::warning)) emit("warning", m); }
void info(const std::string& m) { if (enabled(Level::info)) emit(nullptr, m); }
void debug(const std::string& m) { if (enabled(Level::debug)) emit("debug", m); }
void summary(const std::string& m) { if (enabled(Level::warning)) emit(nullptr, m); }

}  // namespace treerpo::log
