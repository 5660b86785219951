// safetensors.hpp -- the safetensors file format (8-byte little-endian header length, a JSON
// header of {name: {dtype, shape, data_offsets}} plus "__metadata__" strings, then raw
// little-endian data), read and written without torch so Python users open our checkpoints
// with `safetensors` or plain json + struct, and we open theirs.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace treerpo::format {

struct SafeTensor {
  std::string dtype;                 ///< "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"
  std::vector<std::int64_t> shape;
  std::vector<char> bytes;           ///< row-major, little-endian
};

struct SafeTensorsFile {
  std::map<std::string, SafeTensor> tensors;         ///< written in name order
  std::map<std::string, std::string> metadata;       ///< "__metadata__": string values only
};

/// Bytes per element of a safetensors dtype. \throws DataError for an unknown dtype
std::size_t safetensors_element_size(const std::string& dtype);

/// Writes atomically (temporary + rename; "-" streams to stdout).
/// \throws UsageError, CreateError, IoError
void write_safetensors(const std::string& path, const SafeTensorsFile& file, bool force, const std::string& tool);

/// Reads and validates a whole file. \throws NoInputError, DataError naming the file and tensor
SafeTensorsFile read_safetensors(const std::string& path);

/// True when the file starts like a safetensors file (a plausible header length and '{').
bool looks_like_safetensors(const std::string& path);

}  // namespace treerpo::format
