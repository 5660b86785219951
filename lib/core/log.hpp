// log.hpp -- the one place that writes messages for people (stderr), with verbosity levels.
#pragma once
#include <string>

namespace treerpo::log {

enum class Level : int { error = 0, warning = 1, info = 2, debug = 3, trace = 4 };

/// Sets the program name that prefixes every message ("score: warning: ...").
void set_program(const std::string& name);
/// Messages above this level are dropped. Default: warning.
void set_level(Level level);
Level level();
bool enabled(Level level);

void error(const std::string& message);
void warning(const std::string& message);
void info(const std::string& message);
void debug(const std::string& message);
/// A line that is shown unless --quiet (the one-line summary at the end of a run).
void summary(const std::string& message);

}  // namespace treerpo::log
