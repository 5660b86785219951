// zstd_filter.hpp -- Zstandard as HDF5's registered filter 32015 (cd_values[0] = level), the
// same id and encoding as hdf5plugin and h5py, so other readers open our files.
#pragma once
#include <hdf5.h>

namespace treerpo::h5 {
inline constexpr H5Z_filter_t kZstdFilterId = 32015;
inline constexpr int kDefaultZstdLevel = 3;
/// Registers the filter in this process (idempotent). \throws IoError if HDF5 refuses.
void register_zstd_filter();
}  // namespace treerpo::h5
