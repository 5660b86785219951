// zstd_filter.cpp -- the zstd HDF5 filter callback and its registration.
#include <zstd.h>

#include <cstdlib>

#include "h5/zstd_filter_impl.hpp"

namespace treerpo::h5::detail {
namespace {
// Returns the size of the filtered data in *buf, or 0 on failure (HDF5 filter convention).
// Buffers are malloc'ed: HDF5 frees them with free() (H5MM in release builds).
size_t zstd_filter(unsigned flags, size_t cd_nelmts, const unsigned cd_values[], size_t nbytes,
                   size_t* buf_size, void** buf) {
  if (flags & H5Z_FLAG_REVERSE) {
    const unsigned long long size = ZSTD_getFrameContentSize(*buf, nbytes);
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN) return 0;
    void* out = std::malloc(size > 0 ? size : 1);
    if (!out) return 0;
    const size_t got = ZSTD_decompress(out, size, *buf, nbytes);
    if (ZSTD_isError(got) || got != size) { std::free(out); return 0; }
    std::free(*buf);
    *buf = out;
    *buf_size = size > 0 ? size : 1;
    return got;
  }
  const int level = cd_nelmts > 0 ? static_cast<int>(cd_values[0]) : 3;
  const size_t bound = ZSTD_compressBound(nbytes);
  void* out = std::malloc(bound);
  if (!out) return 0;
  const size_t got = ZSTD_compress(out, bound, *buf, nbytes, level);
  if (ZSTD_isError(got)) { std::free(out); return 0; }
  std::free(*buf);
  *buf = out;
  *buf_size = bound;
  return got;
}
}  // namespace

const H5Z_class2_t kZstdFilterClass = {
    H5Z_CLASS_T_VERS, static_cast<H5Z_filter_t>(32015), 1, 1, "zstd", nullptr, nullptr, zstd_filter};
}  // namespace treerpo::h5::detail

#ifdef TREERPO_HDF5_PLUGIN
// Entry points HDF5 looks up in a dynamically loaded filter plugin (HDF5_PLUGIN_PATH).
#include <H5PLextern.h>
extern "C" {
H5PL_type_t H5PLget_plugin_type(void) { return H5PL_TYPE_FILTER; }
const void* H5PLget_plugin_info(void) { return &treerpo::h5::detail::kZstdFilterClass; }
}
#else
#include "core/error.hpp"
#include "h5/handle.hpp"
#include "h5/zstd_filter.hpp"
namespace treerpo::h5 {
void register_zstd_filter() {
  static bool done = false;
  if (done) return;
  check_status(H5Zregister(&detail::kZstdFilterClass), ExitCode::io, "cannot register the zstd HDF5 filter");
  done = true;
}
}  // namespace treerpo::h5
#endif
