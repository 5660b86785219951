// git_revision.hpp -- the source revision a binary was built from (`git describe --always --dirty
// --tags`, or "unknown"), refreshed at every build rather than at configure time.
#pragma once

namespace treerpo::build {
const char* git_revision();
}  // namespace treerpo::build
