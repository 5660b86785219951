// samples_file.cpp -- evaluation sample files.
#include "format/samples_file.hpp"

#include "core/error.hpp"
#include "format/trajectory_io.hpp"
#include "h5/dataset.hpp"

namespace treerpo::format {

void write_samples(const std::string& path, const SamplesFile& s, bool force, const std::string& tool) {
  const auto N = s.prompt_id.size();
  if (s.sample.size() != N || s.text.size() != N || s.checkpoints.empty())
    throw Error(ExitCode::software, "write_samples: items and checkpoints disagree");
  h5::OutputFile out(path, force, tool);
  const hid_t f = out.id();
  h5::set_attr(f, "treerpo_format", std::string(kSamplesFormatName));
  h5::set_attr(f, "treerpo_format_version", std::vector<std::int64_t>{kFormatMajor, 0});
  h5::set_attr(f, "seed", s.seed);
  h5::set_attr(f, "steps", std::vector<std::int64_t>{s.steps});
  h5::set_attr(f, "guidance", std::vector<double>{s.guidance});
  h5::set_attr(f, "shift", std::vector<double>{s.shift});
  const h5::Storage storage{3, 0};
  h5::write_numeric(f, "prompt_id", h5::Type::i64, h5::Type::i64, {N}, s.prompt_id.data(), storage);
  h5::write_numeric(f, "sample", h5::Type::i64, h5::Type::i64, {N}, s.sample.data(), storage);
  h5::write_strings(f, "text", s.text);
  for (const auto& c : s.checkpoints) {
    if (c.rgb.size() != N * c.height * c.width * 3)
      throw Error(ExitCode::software, "write_samples: images of " + c.name + " do not match the items");
    const auto g = h5::create_group(f, c.name);
    h5::set_attr(g.get(), "path", c.path);
    h5::set_attr(g.get(), "digest", c.digest);
    h5::write_numeric(g.get(), "images", h5::Type::u8, h5::Type::u8, {N, c.height, c.width, 3}, c.rgb.data(), storage);
  }
  h5::write_strings(f, "provenance", s.provenance);
  out.commit();
}

SamplesFile read_samples(const h5::InputFile& in) {
  const hid_t f = in.file.get();
  check_format(f, in.name, kSamplesFormatName);
  SamplesFile s;
  auto need = [&](const std::string& path) {
    if (!h5::exists(f, path)) throw DataError(in.name + ": " + path + ": missing dataset");
    return h5::describe(f, path);
  };
  const auto ids = need("/prompt_id");
  if (ids.dtype != "int64" || ids.shape.size() != 1) throw DataError(in.name + ": /prompt_id: expected int64 [N]");
  const auto N = ids.shape[0];
  s.prompt_id.resize(N);
  h5::read_numeric(f, "/prompt_id", h5::Type::i64, s.prompt_id.data(), in.name + ": /prompt_id");
  const auto samples = need("/sample");
  if (samples.dtype != "int64" || samples.shape != std::vector<std::uint64_t>{N})
    throw DataError(in.name + ": /sample: expected int64 [" + std::to_string(N) + "]");
  s.sample.resize(N);
  h5::read_numeric(f, "/sample", h5::Type::i64, s.sample.data(), in.name + ": /sample");
  need("/text");
  s.text = h5::read_strings(f, "/text", in.name + ": /text");
  if (s.text.size() != N) throw DataError(in.name + ": /text: expected " + std::to_string(N) + " strings");
  s.seed = h5::attr_string(f, "seed", in.name + ": seed attribute").value_or("");
  for (const char* name : {"policy", "compare"}) {
    if (!h5::exists(f, std::string("/") + name)) {
      if (std::string(name) == "policy") throw DataError(in.name + ": /policy: missing group");
      continue;
    }
    const std::string images = std::string("/") + name + "/images";
    const auto info = need(images);
    if (info.dtype != "uint8" || info.shape.size() != 4 || info.shape[0] != N || info.shape[3] != 3)
      throw DataError(in.name + ": " + images + ": expected uint8 [" + std::to_string(N) + ", H, W, 3]");
    SampledImages c;
    c.name = name;
    c.height = info.shape[1];
    c.width = info.shape[2];
    c.rgb.resize(N * c.height * c.width * 3);
    h5::read_numeric(f, images, h5::Type::u8, c.rgb.data(), in.name + ": " + images);
    const auto g = h5::open_group(f, name, ExitCode::data, in.name + ": /" + name);
    c.path = h5::attr_string(g.get(), "path", in.name + ": /" + name + " path").value_or("");
    c.digest = h5::attr_string(g.get(), "digest", in.name + ": /" + name + " digest").value_or("");
    s.checkpoints.push_back(std::move(c));
  }
  if (h5::exists(f, "/provenance")) s.provenance = h5::read_strings(f, "/provenance", in.name + ": /provenance");
  return s;
}

}  // namespace treerpo::format
