// zstd_filter_impl.hpp -- the filter class shared by the in-process registration and the
// stand-alone HDF5 plugin library (module-private).
#pragma once
#include <hdf5.h>

namespace treerpo::h5::detail {
extern const H5Z_class2_t kZstdFilterClass;
}
