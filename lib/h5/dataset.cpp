// dataset.cpp -- dataset and attribute helpers over the HDF5 C API.
#include "h5/dataset.hpp"

#include <algorithm>
#include <cstring>

#include "h5/zstd_filter.hpp"

namespace treerpo::h5 {
namespace {
constexpr std::size_t kChunkBytes = 64 * 1024;  // a node's latent is read without the rest

Handle float16_type() {
  // IEEE binary16, little-endian: the layout h5py and numpy read as float16.
  Handle t = check(H5Tcopy(H5T_IEEE_F32LE), ExitCode::software, "H5Tcopy");
  check_status(H5Tset_fields(t.get(), 15, 10, 5, 0, 10), ExitCode::software, "H5Tset_fields");
  check_status(H5Tset_size(t.get(), 2), ExitCode::software, "H5Tset_size");
  check_status(H5Tset_ebias(t.get(), 15), ExitCode::software, "H5Tset_ebias");
  return t;
}

// File types are explicit little-endian; memory types native.
Handle file_type(Type t) {
  switch (t) {
    case Type::f16: return float16_type();
    case Type::f32: return check(H5Tcopy(H5T_IEEE_F32LE), ExitCode::software, "H5Tcopy");
    case Type::f64: return check(H5Tcopy(H5T_IEEE_F64LE), ExitCode::software, "H5Tcopy");
    case Type::i32: return check(H5Tcopy(H5T_STD_I32LE), ExitCode::software, "H5Tcopy");
    case Type::i64: return check(H5Tcopy(H5T_STD_I64LE), ExitCode::software, "H5Tcopy");
    case Type::u8: return check(H5Tcopy(H5T_STD_U8LE), ExitCode::software, "H5Tcopy");
    case Type::u64: return check(H5Tcopy(H5T_STD_U64LE), ExitCode::software, "H5Tcopy");
  }
  return {};
}

Handle memory_type(Type t) {
  switch (t) {
    case Type::f16: return float16_type();  // raw binary16 bits held in uint16 storage
    case Type::f32: return check(H5Tcopy(H5T_NATIVE_FLOAT), ExitCode::software, "H5Tcopy");
    case Type::f64: return check(H5Tcopy(H5T_NATIVE_DOUBLE), ExitCode::software, "H5Tcopy");
    case Type::i32: return check(H5Tcopy(H5T_NATIVE_INT32), ExitCode::software, "H5Tcopy");
    case Type::i64: return check(H5Tcopy(H5T_NATIVE_INT64), ExitCode::software, "H5Tcopy");
    case Type::u8: return check(H5Tcopy(H5T_NATIVE_UINT8), ExitCode::software, "H5Tcopy");
    case Type::u64: return check(H5Tcopy(H5T_NATIVE_UINT64), ExitCode::software, "H5Tcopy");
  }
  return {};
}

std::size_t type_size(Type t) {
  switch (t) {
    case Type::f16: return 2;
    case Type::f32: case Type::i32: return 4;
    case Type::u8: return 1;
    default: return 8;
  }
}

Handle object_create_plist(hid_t cls) {
  Handle p = check(H5Pcreate(cls), ExitCode::software, "H5Pcreate");
  check_status(H5Pset_obj_track_times(p.get(), 0), ExitCode::software, "H5Pset_obj_track_times");
  return p;
}

// Chunks of `chunk_rows` items along the first axis, each item whole.
Handle chunked_plist(const std::vector<hsize_t>& dims, std::size_t chunk_rows, const Storage& s) {
  Handle dcpl = object_create_plist(H5P_DATASET_CREATE);
  std::vector<hsize_t> chunk = dims;
  chunk[0] = static_cast<hsize_t>(std::max<std::size_t>(1, chunk_rows));
  for (std::size_t i = 1; i < chunk.size(); ++i) chunk[i] = std::max<hsize_t>(1, chunk[i]);
  check_status(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()), ExitCode::software,
               "H5Pset_chunk");
  if (s.zstd_level > 0) {
    register_zstd_filter();
    check_status(H5Pset_shuffle(dcpl.get()), ExitCode::software, "H5Pset_shuffle");
    const unsigned level = static_cast<unsigned>(s.zstd_level);
    check_status(H5Pset_filter(dcpl.get(), kZstdFilterId, H5Z_FLAG_MANDATORY, 1, &level), ExitCode::software,
                 "H5Pset_filter(zstd)");
  }
  // Last, so the checksum covers the stored (compressed) bytes: corruption is caught before
  // decompression.
  check_status(H5Pset_fletcher32(dcpl.get()), ExitCode::software, "H5Pset_fletcher32");
  return dcpl;
}

Handle simple_space(const std::vector<hsize_t>& dims, bool unlimited_first) {
  std::vector<hsize_t> max = dims;
  if (unlimited_first && !max.empty()) max[0] = H5S_UNLIMITED;
  return check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), max.data()), ExitCode::software,
               "H5Screate_simple");
}

Handle utf8_string_type() {
  Handle t = check(H5Tcopy(H5T_C_S1), ExitCode::software, "H5Tcopy");
  check_status(H5Tset_size(t.get(), H5T_VARIABLE), ExitCode::software, "H5Tset_size");
  check_status(H5Tset_cset(t.get(), H5T_CSET_UTF8), ExitCode::software, "H5Tset_cset");
  return t;
}

Handle open_dataset(hid_t loc, const std::string& path, const std::string& what) {
  return check(H5Dopen2(loc, path.c_str(), H5P_DEFAULT), ExitCode::data, what + ": cannot open dataset");
}

std::string dtype_of(hid_t type) {
  const H5T_class_t cls = H5Tget_class(type);
  const std::size_t size = H5Tget_size(type);
  switch (cls) {
    case H5T_FLOAT: return "float" + std::to_string(size * 8);
    case H5T_INTEGER:
      return std::string(H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + std::to_string(size * 8);
    case H5T_STRING: return "string";
    case H5T_ENUM: return "enum";
    default: return "other";
  }
}
}  // namespace

const char* type_name(Type t) {
  switch (t) {
    case Type::f16: return "float16";
    case Type::f32: return "float32";
    case Type::f64: return "float64";
    case Type::i32: return "int32";
    case Type::i64: return "int64";
    case Type::u8: return "uint8";
    case Type::u64: return "uint64";
  }
  return "?";
}

Handle create_group(hid_t loc, const std::string& name) {
  Handle gcpl = object_create_plist(H5P_GROUP_CREATE);
  check_status(H5Pset_link_creation_order(gcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED),
               ExitCode::software, "H5Pset_link_creation_order");
  return check(H5Gcreate2(loc, name.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT), ExitCode::io,
               "cannot create group " + name);
}

Handle open_group(hid_t loc, const std::string& name, ExitCode code, const std::string& what) {
  return check(H5Gopen2(loc, name.c_str(), H5P_DEFAULT), code, what);
}

bool exists(hid_t loc, const std::string& path) {
  // Check each component: H5Lexists fails (not false) when an intermediate link is missing.
  std::string partial;
  std::size_t start = path[0] == '/' ? 1 : 0;
  if (start) partial = "/";
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (!partial.empty() && partial.back() != '/') partial += "/";
    partial += path.substr(start, end - start);
    if (H5Lexists(loc, partial.c_str(), H5P_DEFAULT) <= 0) { H5Eclear2(H5E_DEFAULT); return false; }
    start = end + 1;
  }
  return H5Oexists_by_name(loc, path.c_str(), H5P_DEFAULT) > 0;
}

bool is_group(hid_t loc, const std::string& path) {
  // H5Oopen + H5Iget_type: the same calls on HDF5 1.10 and 1.12+ (H5Oget_info changed).
  hid_t obj = H5Oopen(loc, path.c_str(), H5P_DEFAULT);
  if (obj < 0) { H5Eclear2(H5E_DEFAULT); return false; }
  const bool group = H5Iget_type(obj) == H5I_GROUP;
  H5Oclose(obj);
  return group;
}

std::vector<std::string> members(hid_t group) {
  std::vector<std::string> names;
  auto collect = [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->emplace_back(name);
    return 0;
  };
  hsize_t idx = 0;
  if (H5Literate(group, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, collect, &names) < 0) {
    H5Eclear2(H5E_DEFAULT);  // file without creation order (e.g. from h5py): name order
    names.clear();
    idx = 0;
    H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, &idx, collect, &names);
  }
  return names;
}

namespace {
// An enum of uint8 values with the given labels (label i = value i) over `base`.
Handle enum_u8_type(hid_t base, const std::vector<std::string>& labels) {
  Handle t = check(H5Tenum_create(base), ExitCode::software, "H5Tenum_create");
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const auto v = static_cast<std::uint8_t>(i);
    check_status(H5Tenum_insert(t.get(), labels[i].c_str(), &v), ExitCode::software, "H5Tenum_insert");
  }
  return t;
}

void create_empty(hid_t loc, const std::string& name, hid_t ftype, std::size_t item_bytes,
                  const std::vector<std::uint64_t>& item_shape, const Storage& storage, std::uint64_t expected_rows) {
  std::vector<hsize_t> dims{0};
  dims.insert(dims.end(), item_shape.begin(), item_shape.end());
  for (auto d : item_shape) item_bytes *= d;
  Handle space = simple_space(dims, true);
  std::size_t rows = storage.chunk_items;
  if (rows == 0) {
    rows = std::max<std::size_t>(1, kChunkBytes / std::max<std::size_t>(1, item_bytes));
    if (expected_rows) rows = std::min<std::size_t>(rows, expected_rows);
  }
  Handle dcpl = chunked_plist(dims, rows, storage);
  check(H5Dcreate2(loc, name.c_str(), ftype, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT), ExitCode::io,
        "cannot create dataset " + name);
}
}  // namespace

void create_extendible(hid_t loc, const std::string& name, Type file, const std::vector<std::uint64_t>& item_shape,
                       const Storage& storage, std::uint64_t expected_rows) {
  Handle ftype = file_type(file);
  create_empty(loc, name, ftype.get(), type_size(file), item_shape, storage, expected_rows);
}

void create_extendible_enum_u8(hid_t loc, const std::string& name, const std::vector<std::string>& labels,
                               const Storage& storage, std::uint64_t expected_rows) {
  Handle ftype = enum_u8_type(H5T_STD_U8LE, labels);
  create_empty(loc, name, ftype.get(), 1, {}, storage, expected_rows);
}

void append_rows(hid_t loc, const std::string& name, Type memory, std::uint64_t rows, const void* data) {
  if (rows == 0) return;
  Handle dset = check(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), ExitCode::io, "cannot open dataset " + name);
  Handle space = check(H5Dget_space(dset.get()), ExitCode::io, name);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(static_cast<std::size_t>(std::max(rank, 1)));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  std::vector<hsize_t> start(dims.size(), 0), count = dims;
  start[0] = dims[0];
  count[0] = rows;
  dims[0] += rows;
  check_status(H5Dset_extent(dset.get(), dims.data()), ExitCode::io, "cannot extend dataset " + name);
  Handle filespace = check(H5Dget_space(dset.get()), ExitCode::io, name);
  check_status(H5Sselect_hyperslab(filespace.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr),
               ExitCode::software, "H5Sselect_hyperslab");
  Handle memspace = check(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), ExitCode::software,
                          "H5Screate_simple");
  // An enum dataset takes its values as the same enum over native uint8 (HDF5 does not convert
  // plain integers to enums).
  Handle ftype = check(H5Dget_type(dset.get()), ExitCode::io, name);
  Handle mtype = H5Tget_class(ftype.get()) == H5T_ENUM
                     ? check(H5Tget_native_type(ftype.get(), H5T_DIR_ASCEND), ExitCode::software, "H5Tget_native_type")
                     : memory_type(memory);
  check_status(H5Dwrite(dset.get(), mtype.get(), memspace.get(), filespace.get(), H5P_DEFAULT, data), ExitCode::io,
               "cannot write dataset " + name);
}

void write_numeric(hid_t loc, const std::string& name, Type file, Type memory,
                   const std::vector<std::uint64_t>& shape, const void* data, const Storage& storage) {
  if (shape.empty()) throw Error(ExitCode::software, "write_numeric: " + name + ": scalars are stored as attributes");
  create_extendible(loc, name, file, {shape.begin() + 1, shape.end()}, storage, shape[0]);
  bool empty = std::any_of(shape.begin(), shape.end(), [](std::uint64_t d) { return d == 0; });
  if (!empty) append_rows(loc, name, memory, shape[0], data);
}

void write_enum_u8(hid_t loc, const std::string& name, const std::vector<std::string>& labels,
                   const std::vector<std::uint8_t>& values, const Storage& storage) {
  create_extendible_enum_u8(loc, name, labels, storage, values.size());
  append_rows(loc, name, Type::u8, values.size(), values.data());
}

void write_strings(hid_t loc, const std::string& name, const std::vector<std::string>& values) {
  Handle type = utf8_string_type();
  std::vector<hsize_t> dims{values.size()};
  Handle space = simple_space(dims, false);
  Handle dcpl = object_create_plist(H5P_DATASET_CREATE);
  Handle dset = check(H5Dcreate2(loc, name.c_str(), type.get(), space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                      ExitCode::io, "cannot create dataset " + name);
  std::vector<const char*> ptrs;
  for (const auto& v : values) ptrs.push_back(v.c_str());
  if (!values.empty())
    check_status(H5Dwrite(dset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), ExitCode::io,
                 "cannot write dataset " + name);
}

DatasetInfo describe(hid_t loc, const std::string& path) {
  Handle dset = open_dataset(loc, path, path);
  Handle type = check(H5Dget_type(dset.get()), ExitCode::data, path);
  Handle space = check(H5Dget_space(dset.get()), ExitCode::data, path);
  DatasetInfo info;
  info.dtype = dtype_of(type.get());
  int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(static_cast<std::size_t>(std::max(rank, 0)));
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  info.shape.assign(dims.begin(), dims.end());
  Handle dcpl = check(H5Dget_create_plist(dset.get()), ExitCode::data, path);
  if (H5Pget_layout(dcpl.get()) == H5D_CHUNKED) {
    std::vector<hsize_t> chunk(dims.size());
    H5Pget_chunk(dcpl.get(), rank, chunk.data());
    info.chunks.assign(chunk.begin(), chunk.end());
    int n = H5Pget_nfilters(dcpl.get());
    for (int i = 0; i < n; ++i) {
      unsigned flags = 0, cd[8];
      size_t ncd = 8;
      char name[64] = {0};
      H5Z_filter_t id =
          H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags, &ncd, cd, sizeof name, name, nullptr);
      switch (id) {
        case H5Z_FILTER_SHUFFLE: info.filters.emplace_back("shuffle"); break;
        case H5Z_FILTER_FLETCHER32: info.filters.emplace_back("fletcher32"); break;
        case H5Z_FILTER_DEFLATE: info.filters.emplace_back("deflate"); break;
        case kZstdFilterId: info.filters.emplace_back("zstd"); break;
        default: info.filters.emplace_back("filter-" + std::to_string(id)); break;
      }
    }
  }
  return info;
}

void read_numeric(hid_t loc, const std::string& path, Type memory, void* out, const std::string& what) {
  Handle dset = open_dataset(loc, path, what);
  Handle space = check(H5Dget_space(dset.get()), ExitCode::data, what);
  if (H5Sget_simple_extent_npoints(space.get()) == 0) return;
  Handle mtype = memory_type(memory);
  if (H5Dread(dset.get(), mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0) {
    std::string stack = error_stack();
    if (stack.find("Fletcher32") != std::string::npos || stack.find("checksum") != std::string::npos)
      throw DataError(what + ": checksum mismatch, the stored data is corrupted (" + stack + ")");
    throw DataError(what + ": cannot read data (" + stack + ")");
  }
}

std::vector<std::string> read_strings(hid_t loc, const std::string& path, const std::string& what) {
  Handle dset = open_dataset(loc, path, what);
  Handle space = check(H5Dget_space(dset.get()), ExitCode::data, what);
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  std::vector<std::string> out;
  if (n <= 0) return out;
  Handle type = utf8_string_type();
  std::vector<char*> ptrs(static_cast<std::size_t>(n), nullptr);
  if (H5Dread(dset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0)
    throw DataError(what + ": cannot read strings (" + error_stack() + ")");
  for (char* p : ptrs) out.emplace_back(p ? p : "");
  H5Dvlen_reclaim(type.get(), space.get(), H5P_DEFAULT, ptrs.data());
  return out;
}

std::vector<std::string> enum_labels(hid_t loc, const std::string& path, const std::string& what) {
  Handle dset = open_dataset(loc, path, what);
  Handle type = check(H5Dget_type(dset.get()), ExitCode::data, what);
  if (H5Tget_class(type.get()) != H5T_ENUM) throw DataError(what + ": expected an enum dataset");
  int n = H5Tget_nmembers(type.get());
  std::vector<std::string> labels(static_cast<std::size_t>(std::max(n, 0)));
  for (int i = 0; i < n; ++i) {
    long long value = 0;
    H5Tget_member_value(type.get(), static_cast<unsigned>(i), &value);
    char* name = H5Tget_member_name(type.get(), static_cast<unsigned>(i));
    if (value >= 0 && value < n) labels[static_cast<std::size_t>(value)] = name ? name : "";
    H5free_memory(name);
  }
  return labels;
}

namespace {
void write_attr(hid_t obj, const std::string& name, hid_t ftype, hid_t mtype, hid_t space, const void* data) {
  if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
  Handle attr = check(H5Acreate2(obj, name.c_str(), ftype, space, H5P_DEFAULT, H5P_DEFAULT), ExitCode::io,
                      "cannot create attribute " + name);
  check_status(H5Awrite(attr.get(), mtype, data), ExitCode::io, "cannot write attribute " + name);
}

Handle open_attr(hid_t obj, const std::string& name, const std::string& what) {
  return check(H5Aopen(obj, name.c_str(), H5P_DEFAULT), ExitCode::data, what + ": cannot open attribute " + name);
}

std::size_t attr_points(hid_t attr) {
  Handle space = check(H5Aget_space(attr), ExitCode::data, "attribute space");
  return static_cast<std::size_t>(H5Sget_simple_extent_npoints(space.get()));
}
}  // namespace

void set_attr(hid_t obj, const std::string& name, const std::string& value) {
  Handle type = utf8_string_type();
  Handle space = check(H5Screate(H5S_SCALAR), ExitCode::software, "H5Screate");
  const char* p = value.c_str();
  write_attr(obj, name, type.get(), type.get(), space.get(), &p);
}

void set_attr(hid_t obj, const std::string& name, const std::vector<std::int64_t>& values) {
  hsize_t n = values.size();
  Handle space = check(H5Screate_simple(1, &n, nullptr), ExitCode::software, "H5Screate_simple");
  write_attr(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, space.get(), values.data());
}

void set_attr(hid_t obj, const std::string& name, const std::vector<double>& values) {
  hsize_t n = values.size();
  Handle space = check(H5Screate_simple(1, &n, nullptr), ExitCode::software, "H5Screate_simple");
  write_attr(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, space.get(), values.data());
}

void set_attr(hid_t obj, const std::string& name, const std::vector<std::uint64_t>& values) {
  hsize_t n = values.size();
  Handle space = check(H5Screate_simple(1, &n, nullptr), ExitCode::software, "H5Screate_simple");
  write_attr(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, space.get(), values.data());
}

bool has_attr(hid_t obj, const std::string& name) { return H5Aexists(obj, name.c_str()) > 0; }

std::optional<std::string> attr_string(hid_t obj, const std::string& name, const std::string& what) {
  if (!has_attr(obj, name)) return std::nullopt;
  Handle attr = open_attr(obj, name, what);
  Handle type = check(H5Aget_type(attr.get()), ExitCode::data, what);
  if (H5Tget_class(type.get()) != H5T_STRING || attr_points(attr.get()) != 1)
    throw DataError(what + ": attribute " + name + ": expected a string");
  if (H5Tis_variable_str(type.get()) > 0) {
    Handle mtype = utf8_string_type();
    char* p = nullptr;
    check_status(H5Aread(attr.get(), mtype.get(), &p), ExitCode::data, what + ": attribute " + name);
    std::string out = p ? p : "";
    H5free_memory(p);
    return out;
  }
  std::size_t size = H5Tget_size(type.get());
  std::string out(size, '\0');
  check_status(H5Aread(attr.get(), type.get(), out.data()), ExitCode::data, what + ": attribute " + name);
  out.resize(std::strlen(out.c_str()));
  return out;
}

std::optional<std::vector<std::int64_t>> attr_ints(hid_t obj, const std::string& name, const std::string& what) {
  if (!has_attr(obj, name)) return std::nullopt;
  Handle attr = open_attr(obj, name, what);
  Handle type = check(H5Aget_type(attr.get()), ExitCode::data, what);
  if (H5Tget_class(type.get()) != H5T_INTEGER)
    throw DataError(what + ": attribute " + name + ": expected integers, found " + dtype_of(type.get()));
  std::vector<std::int64_t> out(attr_points(attr.get()));
  if (!out.empty())
    check_status(H5Aread(attr.get(), H5T_NATIVE_INT64, out.data()), ExitCode::data, what + ": attribute " + name);
  return out;
}

std::optional<std::vector<std::uint64_t>> attr_uint64s(hid_t obj, const std::string& name, const std::string& what) {
  if (!has_attr(obj, name)) return std::nullopt;
  Handle attr = open_attr(obj, name, what);
  Handle type = check(H5Aget_type(attr.get()), ExitCode::data, what);
  if (H5Tget_class(type.get()) != H5T_INTEGER || H5Tget_sign(type.get()) != H5T_SGN_NONE ||
      H5Tget_size(type.get()) != 8)
    throw DataError(what + ": attribute " + name + ": expected uint64, found " + dtype_of(type.get()));
  std::vector<std::uint64_t> out(attr_points(attr.get()));
  if (!out.empty())
    check_status(H5Aread(attr.get(), H5T_NATIVE_UINT64, out.data()), ExitCode::data, what + ": attribute " + name);
  return out;
}

std::optional<std::vector<double>> attr_doubles(hid_t obj, const std::string& name, const std::string& what) {
  if (!has_attr(obj, name)) return std::nullopt;
  Handle attr = open_attr(obj, name, what);
  Handle type = check(H5Aget_type(attr.get()), ExitCode::data, what);
  const H5T_class_t cls = H5Tget_class(type.get());
  if (cls != H5T_FLOAT && cls != H5T_INTEGER)
    throw DataError(what + ": attribute " + name + ": expected numbers, found " + dtype_of(type.get()));
  std::vector<double> out(attr_points(attr.get()));
  if (!out.empty())
    check_status(H5Aread(attr.get(), H5T_NATIVE_DOUBLE, out.data()), ExitCode::data, what + ": attribute " + name);
  return out;
}

std::vector<std::string> attr_names(hid_t obj) {
  std::vector<std::string> names;
  auto collect = [](hid_t, const char* name, const H5A_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->emplace_back(name);
    return 0;
  };
  hsize_t idx = 0;
  H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, collect, &names);
  return names;
}

void copy_object(hid_t src_loc, const std::string& src, hid_t dst_loc, const std::string& dst) {
  check_status(H5Ocopy(src_loc, src.c_str(), dst_loc, dst.c_str(), H5P_DEFAULT, H5P_DEFAULT), ExitCode::io,
               "cannot copy " + src);
}

}  // namespace treerpo::h5
