# git_revision.cmake -- run at every build (not only at configure time): writes the source tree's
# `git describe` into OUT, touching the file only when the revision changed, so that an incremental
# build records the commit it was built from and recompiles one small file when it moves.
# Usage: cmake -DSOURCE_DIR=... -DOUT=... -P git_revision.cmake
set(revision "unknown")
find_package(Git QUIET)
if(GIT_FOUND AND EXISTS "${SOURCE_DIR}/.git")
  execute_process(COMMAND "${GIT_EXECUTABLE}" describe --always --dirty --tags
                  WORKING_DIRECTORY "${SOURCE_DIR}" OUTPUT_VARIABLE described RESULT_VARIABLE status
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(status EQUAL 0 AND described)
    set(revision "${described}")
  endif()
endif()
set(content "// Generated at build time by lib/core/git_revision.cmake.\n#include \"core/git_revision.hpp\"\n\
const char* treerpo::build::git_revision() { return \"${revision}\"; }\n")
set(old "")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL content)
  file(WRITE "${OUT}" "${content}")
endif()
