// dataset.hpp -- typed helpers for the datasets and attributes the file format uses: chunked,
// shuffled, zstd-compressed and Fletcher32-checksummed datasets with times not tracked.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "h5/handle.hpp"

namespace treerpo::h5 {

/// Storage settings for one dataset.
struct Storage {
  int zstd_level = 3;          ///< 0 = no compression and no shuffle (the checksum stays on)
  std::size_t chunk_items = 0; ///< items (first axis) per chunk; 0 = automatic (~64 KiB chunks)
};

/// The element types the format uses; each maps to an explicit little-endian file type.
enum class Type { f16, f32, f64, i32, i64, u8, u64 };
const char* type_name(Type t);  ///< "float32", "int64", ...

/// What a dataset is: class, size, signedness and shape (for validation and inspection).
struct DatasetInfo {
  std::string dtype;              ///< "float16/32/64", "int8..64", "uint8..64", "string", "enum", other
  std::vector<std::uint64_t> shape;
  std::vector<std::uint64_t> chunks;  ///< empty when contiguous
  std::vector<std::string> filters;   ///< e.g. "shuffle", "zstd", "fletcher32"
};

Handle create_group(hid_t loc, const std::string& name);
Handle open_group(hid_t loc, const std::string& name, ExitCode code, const std::string& what);
bool exists(hid_t loc, const std::string& path);
/// Names of a group's members in creation order (falls back to name order).
std::vector<std::string> members(hid_t group);
bool is_group(hid_t loc, const std::string& path);

/// Writes a numeric dataset from host memory. `memory` is the in-memory type of `data`
/// (f32 data may be stored as f16: HDF5 converts, rounding to nearest).
void write_numeric(hid_t loc, const std::string& name, Type file, Type memory,
                   const std::vector<std::uint64_t>& shape, const void* data, const Storage& storage);
/// Creates an empty dataset [0, item_shape...] of `file` type that append_rows extends. Chunks hold
/// about 64 KiB, or `expected_rows` items when that is fewer (0 = not known).
void create_extendible(hid_t loc, const std::string& name, Type file, const std::vector<std::uint64_t>& item_shape,
                       const Storage& storage, std::uint64_t expected_rows = 0);
/// The same for a 1-D enum of uint8 values with the given labels (label i = value i).
void create_extendible_enum_u8(hid_t loc, const std::string& name, const std::vector<std::string>& labels,
                               const Storage& storage, std::uint64_t expected_rows = 0);
/// Appends `rows` items (row-major, of `memory` type; uint8 for an enum) to an extendible dataset.
void append_rows(hid_t loc, const std::string& name, Type memory, std::uint64_t rows, const void* data);
/// Writes a 1-D enum dataset of uint8 values with the given labels (label i = value i).
void write_enum_u8(hid_t loc, const std::string& name, const std::vector<std::string>& labels,
                   const std::vector<std::uint8_t>& values, const Storage& storage);
/// Writes a 1-D variable-length UTF-8 string dataset.
void write_strings(hid_t loc, const std::string& name, const std::vector<std::string>& values);

DatasetInfo describe(hid_t loc, const std::string& path);
/// Reads a whole numeric dataset converted to `memory`. \throws DataError naming `what`
void read_numeric(hid_t loc, const std::string& path, Type memory, void* out, const std::string& what);
std::vector<std::string> read_strings(hid_t loc, const std::string& path, const std::string& what);
/// Labels of an enum dataset, by value. \throws DataError
std::vector<std::string> enum_labels(hid_t loc, const std::string& path, const std::string& what);

// Attributes (on any object). Strings are UTF-8; numeric arrays are 1-D.
void set_attr(hid_t obj, const std::string& name, const std::string& value);
void set_attr(hid_t obj, const std::string& name, const std::vector<std::int64_t>& values);
void set_attr(hid_t obj, const std::string& name, const std::vector<double>& values);
void set_attr(hid_t obj, const std::string& name, const std::vector<std::uint64_t>& values);
bool has_attr(hid_t obj, const std::string& name);
std::optional<std::string> attr_string(hid_t obj, const std::string& name, const std::string& what);
std::optional<std::vector<std::int64_t>> attr_ints(hid_t obj, const std::string& name, const std::string& what);
std::optional<std::vector<double>> attr_doubles(hid_t obj, const std::string& name, const std::string& what);
/// An unsigned 64-bit integer attribute (uint64 in the file: a signed one is refused).
std::optional<std::vector<std::uint64_t>> attr_uint64s(hid_t obj, const std::string& name, const std::string& what);
std::vector<std::string> attr_names(hid_t obj);

/// Copies an object (group or dataset, recursively) from one file to another.
void copy_object(hid_t src_loc, const std::string& src, hid_t dst_loc, const std::string& dst);

}  // namespace treerpo::h5
