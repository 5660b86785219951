// dataset_file.hpp -- supervised data set files: (prompt, image) pairs with a task kind, what the
// SFT objective of `update` and `evaluate` read (treerpo_format = "dataset", version 1).
#pragma once
#include <string>
#include <vector>

#include "format/trajectory.hpp"
#include "h5/io.hpp"

namespace treerpo::format {

inline constexpr const char* kDatasetFormatName = "dataset";

struct Dataset {
  Prompts prompts;                        ///< /prompts (text, id, optional embeddings)
  ByteArray images;                       ///< /images [N, H, W, 3] uint8
  std::vector<std::string> kind_labels;   ///< labels of the /kind enum
  std::vector<std::uint8_t> kind;         ///< /kind [N]: task kind of each sample
  std::vector<std::string> provenance;
};

/// Writes atomically ("-" = stdout). \throws UsageError, CreateError, IoError
void write_dataset(const std::string& path, const Dataset& d, bool force, const std::string& tool);
/// Reads and validates. \throws NoInputError, DataError naming the file and dataset
Dataset read_dataset(const std::string& path);
/// The same for an input already open.
Dataset read_dataset(const h5::InputFile& in);

}  // namespace treerpo::format
