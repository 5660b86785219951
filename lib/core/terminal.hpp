// terminal.hpp -- terminal checks in one place, with test overrides (zstd's UTIL_isConsole idea).
#pragma once

namespace treerpo::terminal {
/// True when fd is a terminal, or when a test forced it with set_fake_terminal().
bool is_terminal(int fd);
/// Test hook (hidden --fake-stdout-tty / --fake-stderr-tty / --fake-stdin-tty flags).
void set_fake_terminal(int fd, bool value);
}  // namespace treerpo::terminal
