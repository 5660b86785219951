// safetensors.cpp -- reader and writer of the safetensors format.
#include "format/safetensors.hpp"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/atomic_output.hpp"
#include "core/error.hpp"

namespace treerpo::format {
namespace {
constexpr std::uint64_t kMaxHeader = 100u << 20;  // the reference implementation's limit

std::uint64_t read_le64(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
}  // namespace

std::size_t safetensors_element_size(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL") return 1;
  throw DataError("unknown safetensors dtype '" + dtype + "'");
}

void write_safetensors(const std::string& path, const SafeTensorsFile& file, bool force, const std::string& tool) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!file.metadata.empty()) header["__metadata__"] = file.metadata;
  std::uint64_t offset = 0;
  for (const auto& [name, t] : file.tensors) {
    std::uint64_t n = 1;
    for (auto d : t.shape) n *= static_cast<std::uint64_t>(d);
    if (n * safetensors_element_size(t.dtype) != t.bytes.size())
      throw Error(ExitCode::software, "safetensors: tensor " + name + " has the wrong number of bytes");
    header[name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // pad so the data starts 8-byte aligned
  AtomicOutput out(path, force, tool, "safetensors");
  {
    std::ofstream f(out.temp_path(), std::ios::binary);
    if (!f) throw CreateError(with_errno(out.name() + ": cannot create output", errno));
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(text.size()) >> (8 * i));
    f.write(reinterpret_cast<const char*>(len), 8);
    f.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& [name, t] : file.tensors) f.write(t.bytes.data(), static_cast<std::streamsize>(t.bytes.size()));
    f.flush();
    if (!f) throw IoError(with_errno(out.name() + ": write failed", errno));
  }
  out.commit();
}

bool looks_like_safetensors(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  unsigned char head[9];
  if (!f.read(reinterpret_cast<char*>(head), 9)) return false;
  const std::uint64_t n = read_le64(head);
  return n >= 2 && n <= kMaxHeader && head[8] == '{';
}

SafeTensorsFile read_safetensors(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) throw NoInputError(with_errno(path, errno));
  const auto size = static_cast<std::uint64_t>(f.tellg());
  f.seekg(0);
  unsigned char len[8];
  if (size < 8 || !f.read(reinterpret_cast<char*>(len), 8))
    throw DataError(path + ": not a safetensors file (shorter than its 8-byte header length)");
  const std::uint64_t n = read_le64(len);
  if (n > kMaxHeader || 8 + n > size)
    throw DataError(path + ": not a safetensors file (header length " + std::to_string(n) + " is impossible)");
  std::string text(n, '\0');
  f.read(text.data(), static_cast<std::streamsize>(n));
  nlohmann::json header = nlohmann::json::parse(text, nullptr, false);
  if (header.is_discarded() || !header.is_object()) throw DataError(path + ": safetensors header is not a JSON object");
  const std::uint64_t data_size = size - 8 - n;
  SafeTensorsFile out;
  std::vector<char> data(data_size);
  f.read(data.data(), static_cast<std::streamsize>(data_size));
  if (!f) throw IoError(path + ": read failed");
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) throw DataError(path + ": __metadata__ is not an object");
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) throw DataError(path + ": __metadata__ " + k + " is not a string");
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    try {
      SafeTensor t;
      t.dtype = entry.at("dtype").get<std::string>();
      t.shape = entry.at("shape").get<std::vector<std::int64_t>>();
      const auto offsets = entry.at("data_offsets").get<std::vector<std::uint64_t>>();
      std::uint64_t count = 1;
      for (auto d : t.shape) {
        if (d < 0) throw DataError("negative extent");
        count *= static_cast<std::uint64_t>(d);
      }
      if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > data_size ||
          offsets[1] - offsets[0] != count * safetensors_element_size(t.dtype))
        throw DataError("data_offsets do not match dtype and shape");
      t.bytes.assign(data.begin() + static_cast<std::ptrdiff_t>(offsets[0]),
                     data.begin() + static_cast<std::ptrdiff_t>(offsets[1]));
      out.tensors.emplace(name, std::move(t));
    } catch (const nlohmann::json::exception& e) {
      throw DataError(path + ": tensor " + name + ": malformed header entry (" + e.what() + ")");
    } catch (const DataError& e) {
      throw DataError(path + ": tensor " + name + ": " + e.what());
    }
  }
  return out;
}

}  // namespace treerpo::format
