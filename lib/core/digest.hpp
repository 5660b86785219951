// digest.hpp -- SHA-256, used to record which inputs (and later which weights) made a file.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace treerpo {

/// Incremental SHA-256 (FIPS 180-4). Output matches `sha256sum`.
class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t size);
  /// Finishes and returns the lowercase hex digest; the object must not be updated after.
  std::string hex();

 private:
  void block(const std::uint8_t* p);
  std::array<std::uint32_t, 8> h_;
  std::array<std::uint8_t, 64> buffer_{};
  std::size_t buffered_ = 0;
  std::uint64_t length_ = 0;
};

/// "sha256:<hex>" of a byte range.
std::string sha256_of(const void* data, std::size_t size);
/// "sha256:<hex>" of a regular file's contents. \throws NoInputError / IoError
std::string sha256_of_file(const std::string& path);

}  // namespace treerpo
