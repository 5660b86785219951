// terminal.cpp -- isatty() with overrides for tests.
#include "core/terminal.hpp"

#include <unistd.h>

namespace treerpo::terminal {
namespace {
int g_fake[3] = {-1, -1, -1};  // -1: ask the OS
}
bool is_terminal(int fd) {
  if (fd >= 0 && fd < 3 && g_fake[fd] >= 0) return g_fake[fd] == 1;
  return isatty(fd) == 1;
}
void set_fake_terminal(int fd, bool value) {
  if (fd >= 0 && fd < 3) g_fake[fd] = value ? 1 : 0;
}
}  // namespace treerpo::terminal
