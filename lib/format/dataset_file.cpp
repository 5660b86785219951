// dataset_file.cpp -- data set files.
#include "format/dataset_file.hpp"

#include "core/error.hpp"
#include "format/trajectory_io.hpp"
#include "h5/dataset.hpp"
#include "h5/io.hpp"

namespace treerpo::format {

void write_dataset(const std::string& path, const Dataset& d, bool force, const std::string& tool) {
  h5::OutputFile out(path, force, tool);
  h5::set_attr(out.id(), "treerpo_format", std::string(kDatasetFormatName));
  h5::set_attr(out.id(), "treerpo_format_version", std::vector<std::int64_t>{kFormatMajor, kFormatMinor});
  write_prompts(out.id(), d.prompts, WriteOptions{});
  const h5::Storage s{3, 0};
  h5::write_numeric(out.id(), "images", h5::Type::u8, h5::Type::u8, d.images.shape, d.images.data.data(), s);
  h5::write_enum_u8(out.id(), "kind", d.kind_labels, d.kind, s);
  h5::write_strings(out.id(), "provenance", d.provenance);
  out.commit();
}

Dataset read_dataset(const std::string& path) { return read_dataset(h5::open_input(path)); }

Dataset read_dataset(const h5::InputFile& in) {
  const hid_t f = in.file.get();
  check_format(f, in.name, kDatasetFormatName);
  Dataset d;
  d.prompts = read_prompts(f, in.name);
  const std::uint64_t N = d.prompts.text.size();
  if (!h5::exists(f, "/images")) throw DataError(in.name + ": /images: missing dataset");
  const auto info = h5::describe(f, "/images");
  if (info.dtype != "uint8" || info.shape.size() != 4 || info.shape[0] != N || info.shape[3] != 3)
    throw DataError(in.name + ": /images: expected uint8 [" + std::to_string(N) + ", H, W, 3]");
  d.images.shape = info.shape;
  d.images.data.resize(info.shape[0] * info.shape[1] * info.shape[2] * 3);
  h5::read_numeric(f, "/images", h5::Type::u8, d.images.data.data(), in.name + ": /images");
  if (!h5::exists(f, "/kind")) throw DataError(in.name + ": /kind: missing dataset");
  d.kind_labels = h5::enum_labels(f, "/kind", in.name + ": /kind");
  const auto kinfo = h5::describe(f, "/kind");
  if (kinfo.shape.size() != 1 || kinfo.shape[0] != N)
    throw DataError(in.name + ": /kind: expected [" + std::to_string(N) + "]");
  d.kind.resize(N);
  h5::read_numeric(f, "/kind", h5::Type::u8, d.kind.data(), in.name + ": /kind");
  if (h5::exists(f, "/provenance")) d.provenance = h5::read_strings(f, "/provenance", in.name + ": /provenance");
  return d;
}

}  // namespace treerpo::format
