// trajectory_io.cpp -- HDF5 layout of format 1: what goes where, and a reader that checks
// each dataset's presence, dtype and shape before it trusts it.
#include "format/trajectory_io.hpp"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.hpp"
#include "core/text.hpp"
#include "core/half.hpp"

namespace treerpo::format {
namespace {
using h5::Handle;
using h5::Type;

// Expected rank and (optionally) fixed extents; -1 = any.
struct Expect {
  std::vector<std::string> dtypes;
  std::vector<std::int64_t> shape;
};

h5::DatasetInfo require(hid_t file, const std::string& name, const std::string& path, const Expect& e) {
  if (!h5::exists(file, path))
    throw DataError(name + ": " + path + ": missing dataset (required by format " + std::to_string(kFormatMajor) +
                    ".x)");
  h5::DatasetInfo info = h5::describe(file, path);
  if (std::find(e.dtypes.begin(), e.dtypes.end(), info.dtype) == e.dtypes.end()) {
    std::string want;
    for (std::size_t i = 0; i < e.dtypes.size(); ++i) want += (i ? " or " : "") + e.dtypes[i];
    throw DataError(name + ": " + path + ": expected " + want + ", found " + info.dtype);
  }
  bool ok = info.shape.size() == e.shape.size();
  for (std::size_t i = 0; ok && i < e.shape.size(); ++i)
    if (e.shape[i] >= 0 && info.shape[i] != static_cast<std::uint64_t>(e.shape[i])) ok = false;
  if (!ok) {
    std::string want = "[";
    for (std::size_t i = 0; i < e.shape.size(); ++i)
      want += (i ? ", " : "") + (e.shape[i] < 0 ? std::string("*") : std::to_string(e.shape[i]));
    throw DataError(name + ": " + path + ": expected shape " + want + "], found " + shape_text(info.shape));
  }
  return info;
}

template <typename T>
std::vector<T> read_vector(hid_t file, const std::string& name, const std::string& path, Type type,
                           const char* dtype, std::int64_t items) {
  require(file, name, path, {{dtype}, {items}});
  std::vector<T> out(static_cast<std::size_t>(h5::describe(file, path).shape[0]));
  h5::read_numeric(file, path, type, out.data(), name + ": " + path);
  return out;
}

FloatArray read_floats(hid_t file, const std::string& name, const std::string& path,
                       const std::vector<std::string>& dtypes, const std::vector<std::int64_t>& shape) {
  auto info = require(file, name, path, {dtypes, shape});
  FloatArray a;
  a.shape = info.shape;
  std::size_t n = 1;
  for (auto d : a.shape) n *= d;
  a.data.resize(n);
  h5::read_numeric(file, path, Type::f32, a.data.data(), name + ": " + path);
  return a;
}

void write_floats(hid_t loc, const std::string& path, const FloatArray& a, const h5::Storage& s) {
  h5::write_numeric(loc, path, Type::f32, Type::f32, a.shape, a.data.data(), s);
}

template <typename T>
void write_vector(hid_t loc, const std::string& path, Type type, const std::vector<T>& v, const h5::Storage& s) {
  h5::write_numeric(loc, path, type, type, {v.size()}, v.data(), s);
}

std::string require_attr_string(hid_t obj, const std::string& name, const std::string& where,
                                 const std::string& attr) {
  auto v = h5::attr_string(obj, attr, name + ": " + where);
  if (!v) throw DataError(name + ": " + where + ": missing attribute " + attr);
  return *v;
}

std::vector<std::int64_t> require_attr_ints(hid_t obj, const std::string& name, const std::string& where,
                                            const std::string& attr) {
  auto v = h5::attr_ints(obj, attr, name + ": " + where);
  if (!v) throw DataError(name + ": " + where + ": missing attribute " + attr);
  return *v;
}

std::vector<double> require_attr_doubles(hid_t obj, const std::string& name, const std::string& where,
                                         const std::string& attr) {
  auto v = h5::attr_doubles(obj, attr, name + ": " + where);
  if (!v) throw DataError(name + ": " + where + ": missing attribute " + attr);
  return *v;
}

std::int64_t scalar(const std::vector<std::int64_t>& v, const std::string& name, const std::string& what) {
  if (v.size() != 1) throw DataError(name + ": " + what + ": expected one integer");
  return v[0];
}

Handle require_group(hid_t file, const std::string& name, const std::string& path) {
  if (!h5::exists(file, path) || !h5::is_group(file, path))
    throw DataError(name + ": " + path + ": missing group (required by format " + std::to_string(kFormatMajor) + ".x)");
  return h5::open_group(file, path, ExitCode::data, name + ": " + path);
}
}  // namespace

std::int64_t check_format(hid_t file, const std::string& name, const std::string& expected) {
  auto format = h5::attr_string(file, "treerpo_format", name + ": /");
  if (!format) throw DataError(name + ": not a treerpo file (no treerpo_format attribute on /)");
  if (*format != expected)
    throw DataError(name + ": / attribute treerpo_format is '" + *format + "', expected '" + expected + "'");
  auto version = h5::attr_ints(file, "treerpo_format_version", name + ": /");
  if (!version || version->size() != 2)
    throw DataError(name + ": / attribute treerpo_format_version: expected [major, minor]");
  if ((*version)[0] > kFormatMajor || (*version)[0] < 1)
    throw DataError(name + ": file is format " + std::to_string((*version)[0]) + "." + std::to_string((*version)[1]) +
                    "; this build reads " + std::to_string(kFormatMajor) + ".x");
  return (*version)[1];
}

Prompts read_prompts(hid_t file, const std::string& name) {
  Prompts p;
  require_group(file, name, "/prompts");
  require(file, name, "/prompts/text", {{"string"}, {-1}});
  p.text = h5::read_strings(file, "/prompts/text", name + ": /prompts/text");
  const auto P = static_cast<std::int64_t>(p.text.size());
  p.id = read_vector<std::int64_t>(file, name, "/prompts/id", Type::i64, "int64", P);
  if (h5::exists(file, "/prompts/conditioning"))
    p.conditioning = read_floats(file, name, "/prompts/conditioning", {"float32", "float16"}, {P, -1, -1});
  if (h5::exists(file, "/prompts/pooled"))
    p.pooled = read_floats(file, name, "/prompts/pooled", {"float32", "float16"}, {P, -1});
  if (h5::exists(file, "/prompts/mask")) {
    if (!p.conditioning) throw DataError(name + ": /prompts/mask: present without /prompts/conditioning");
    const auto L = static_cast<std::int64_t>(p.conditioning->shape[1]);
    auto info = require(file, name, "/prompts/mask", {{"uint8"}, {P, L}});
    ByteArray m;
    m.shape = info.shape;
    m.data.resize(info.shape[0] * info.shape[1]);
    h5::read_numeric(file, "/prompts/mask", Type::u8, m.data.data(), name + ": /prompts/mask");
    p.mask = std::move(m);
  }

  std::set<std::int64_t> ids(p.id.begin(), p.id.end());
  if (ids.size() != p.id.size()) throw DataError(name + ": /prompts/id: prompt ids must be unique");
  return p;
}

namespace {
// The seed and guidance of /rollout: typed attributes since 1.3; before, the seed as a decimal
// string and the guidance inside the settings JSON (1 where absent: no guidance).
void read_seed_and_guidance(hid_t group, const std::string& name, std::int64_t minor, RolloutConfig& r) {
  const std::string w = "/rollout";
  if (minor >= 3) {
    const auto seed = h5::attr_uint64s(group, "seed", name + ": " + w);
    if (!seed || seed->size() != 1) throw DataError(name + ": /rollout attribute seed: expected one uint64");
    r.seed = seed->front();
    const auto guidance = require_attr_doubles(group, name, w, "guidance");
    if (guidance.size() != 1 || !std::isfinite(guidance[0]) || guidance[0] < 0)
      throw DataError(name + ": /rollout attribute guidance: expected one finite number >= 0");
    r.guidance = guidance[0];
    return;
  }
  const std::string seed = require_attr_string(group, name, w, "seed");
  try {
    std::size_t used = 0;
    if (seed.empty() || seed.find_first_not_of("0123456789") != std::string::npos) throw std::invalid_argument(seed);
    r.seed = std::stoull(seed, &used);
  } catch (const std::exception&) {
    throw DataError(name + ": /rollout attribute seed: '" + seed + "' is not an unsigned 64-bit decimal");
  }
  const auto settings = nlohmann::json::parse(r.settings, nullptr, false);
  if (settings.is_object() && settings.contains("guidance") && settings["guidance"].is_number())
    r.guidance = settings["guidance"].get<double>();
}

// /rollout: the sampler's settings. It fixes the latent shape every array is checked against.
RolloutConfig read_rollout(hid_t file, const std::string& name, std::int64_t minor) {
  RolloutConfig r;
  Handle g = require_group(file, name, "/rollout");
  const std::string w = "/rollout";
  r.mode = require_attr_string(g.get(), name, w, "mode");
  r.kernel = require_attr_string(g.get(), name, w, "kernel");
  r.logprob_reduction = require_attr_string(g.get(), name, w, "logprob_reduction");
  r.steps = scalar(require_attr_ints(g.get(), name, w, "steps"), name, w + " steps");
  r.shift = require_attr_doubles(g.get(), name, w, "shift").at(0);
  r.depth = scalar(require_attr_ints(g.get(), name, w, "depth"), name, w + " depth");
  r.branching = require_attr_ints(g.get(), name, w, "branching");
  r.leaves_per_prompt = scalar(require_attr_ints(g.get(), name, w, "leaves_per_prompt"), name, w);
  r.window_start = scalar(require_attr_ints(g.get(), name, w, "window_start"), name, w + " window_start");
  r.noise_levels = require_attr_doubles(g.get(), name, w, "noise_levels");
  if (const auto block = h5::attr_ints(g.get(), "noise_block", name + ": " + w)) {
    r.noise_block = scalar(*block, name, w + " noise_block");
    if (r.noise_block < 1)
      throw DataError(name + ": /rollout attribute noise_block: expected >= 1, found " +
                      std::to_string(r.noise_block));
  }
  r.iteration = scalar(require_attr_ints(g.get(), name, w, "iteration"), name, w + " iteration");
  r.model_digest = require_attr_string(g.get(), name, w, "model_digest");
  r.timestep_convention = require_attr_string(g.get(), name, w, "timestep_convention");
  const std::string dtype = require_attr_string(g.get(), name, w, "latent_dtype");
  if (dtype != "float32" && dtype != "float16")
    throw DataError(name + ": /rollout attribute latent_dtype: expected float32 or float16, found " + dtype);
  r.latent_dtype = dtype == "float16" ? LatentDtype::float16 : LatentDtype::float32;
  r.latent_shape = require_attr_ints(g.get(), name, w, "latent_shape");
  if (r.noise_block > 1 && (r.latent_shape.size() != 3 || r.latent_shape[1] % r.noise_block != 0 ||
                            r.latent_shape[2] % r.noise_block != 0))
    throw DataError(name + ": /rollout attribute noise_block " + std::to_string(r.noise_block) +
                    ": expected a divisor of the latent height and width (latent_shape C,H,W)");
  r.settings = h5::attr_string(g.get(), "settings", name).value_or("{}");
  read_seed_and_guidance(g.get(), name, minor, r);
  r.sigmas = read_vector<double>(file, name, "/rollout/sigmas", Type::f64, "float64", r.steps + 1);
  return r;
}

// /nodes, checked against the latent shape [C, H, W] and dtype of /rollout.
Nodes read_nodes(hid_t file, const std::string& name, const std::vector<std::int64_t>& shape,
                 const std::string& latent_dtype) {
  auto item_shape = [&](std::int64_t items) {
    std::vector<std::int64_t> s{items};
    s.insert(s.end(), shape.begin(), shape.end());
    return s;
  };
  Nodes n;
  require_group(file, name, "/nodes");
  require(file, name, "/nodes/prompt", {{"int64"}, {-1}});
  const auto N = static_cast<std::int64_t>(h5::describe(file, "/nodes/prompt").shape[0]);
  n.prompt = read_vector<std::int64_t>(file, name, "/nodes/prompt", Type::i64, "int64", N);
  n.parent = read_vector<std::int64_t>(file, name, "/nodes/parent", Type::i64, "int64", N);
  n.depth = read_vector<std::int32_t>(file, name, "/nodes/depth", Type::i32, "int32", N);
  n.step = read_vector<std::int32_t>(file, name, "/nodes/step", Type::i32, "int32", N);
  require(file, name, "/nodes/kind", {{"enum"}, {N}});
  if (h5::enum_labels(file, "/nodes/kind", name + ": /nodes/kind") != node_kind_labels())
    throw DataError(name + ": /nodes/kind: expected enum {trunk, branch, leaf}");
  std::vector<std::uint8_t> kinds(static_cast<std::size_t>(N));
  h5::read_numeric(file, "/nodes/kind", Type::u8, kinds.data(), name + ": /nodes/kind");
  for (auto k : kinds) {
    if (k > 2) throw DataError(name + ": /nodes/kind: value " + std::to_string(k) + " is not a node kind");
    n.kind.push_back(static_cast<NodeKind>(k));
  }
  n.latent = read_floats(file, name, "/nodes/latent", {latent_dtype}, item_shape(N));
  // float64 since format 1.2; float32 (1.0, 1.1) is widened.
  require(file, name, "/nodes/log_prob", {{"float64", "float32"}, {N}});
  n.log_prob.resize(static_cast<std::size_t>(N));
  h5::read_numeric(file, "/nodes/log_prob", Type::f64, n.log_prob.data(), name + ": /nodes/log_prob");
  n.noise_std = read_vector<float>(file, name, "/nodes/noise_std", Type::f32, "float32", N);
  n.noise_key = read_vector<std::uint64_t>(file, name, "/nodes/noise_key", Type::u64, "uint64", N);
  if (h5::exists(file, "/nodes/velocity"))
    n.velocity = read_floats(file, name, "/nodes/velocity", {"float32", "float16"}, item_shape(N));

  return n;
}

// /leaves, checked against the rollout's latent shape and dtype and its window.
Leaves read_leaves(hid_t file, const std::string& name, const RolloutConfig& r) {
  const auto& shape = r.latent_shape;
  const std::string latent_dtype = latent_dtype_name(r.latent_dtype);
  auto item_shape = [&](std::int64_t items) {
    std::vector<std::int64_t> s{items};
    s.insert(s.end(), shape.begin(), shape.end());
    return s;
  };
  Leaves leaves;
  require_group(file, name, "/leaves");
  require(file, name, "/leaves/node", {{"int64"}, {-1}});
  const auto G = static_cast<std::int64_t>(h5::describe(file, "/leaves/node").shape[0]);
  leaves.node = read_vector<std::int64_t>(file, name, "/leaves/node", Type::i64, "int64", G);
  leaves.prompt = read_vector<std::int64_t>(file, name, "/leaves/prompt", Type::i64, "int64", G);
  leaves.latent = read_floats(file, name, "/leaves/latent", {latent_dtype}, item_shape(G));
  if (h5::exists(file, "/leaves/image")) {
    auto info = require(file, name, "/leaves/image", {{"uint8"}, {G, -1, -1, 3}});
    ByteArray img;
    img.shape = info.shape;
    img.data.resize(info.shape[0] * info.shape[1] * info.shape[2] * info.shape[3]);
    h5::read_numeric(file, "/leaves/image", Type::u8, img.data.data(), name + ": /leaves/image");
    leaves.image = std::move(img);
  }
  if (h5::exists(file, "/leaves/path")) {
    const auto S = leaf_path_steps(r.steps, r.window_start, r.depth);
    if (S < 1) throw DataError(name + ": /leaves/path: the rollout has no ODE-suffix states to store");
    auto path_shape = item_shape(S);
    path_shape.insert(path_shape.begin(), G);
    leaves.path = read_floats(file, name, "/leaves/path", {latent_dtype}, path_shape);
  }

  return leaves;
}
}  // namespace

Trajectory read_trajectory(hid_t file, const std::string& name) {
  Trajectory t;
  t.format_minor = check_format(file, name);
  t.rollout = read_rollout(file, name, t.format_minor);
  t.prompts = read_prompts(file, name);
  const auto P = static_cast<std::int64_t>(t.prompts.text.size());
  t.nodes = read_nodes(file, name, t.rollout.latent_shape, latent_dtype_name(t.rollout.latent_dtype));
  const auto N = static_cast<std::int64_t>(t.nodes.size());
  t.leaves = read_leaves(file, name, t.rollout);
  const auto G = static_cast<std::int64_t>(t.leaves.size());
  if (h5::exists(file, "/rewards")) {
    Handle g = h5::open_group(file, "/rewards", ExitCode::data, name + ": /rewards");
    for (const auto& member : h5::members(g.get())) {
      const std::string path = "/rewards/" + member;
      Reward rw;
      rw.name = member;
      rw.values = read_vector<float>(file, name, path, Type::f32, "float32", G);
      Handle d = h5::check(H5Dopen2(file, path.c_str(), H5P_DEFAULT), ExitCode::data, name + ": " + path);
      rw.weight = require_attr_doubles(d.get(), name, path, "weight").at(0);
      rw.settings = h5::attr_string(d.get(), "settings", name + ": " + path).value_or("{}");
      t.rewards.push_back(std::move(rw));
    }
  }

  if (h5::exists(file, "/advantages")) {
    Handle g = h5::open_group(file, "/advantages", ExitCode::data, name + ": /advantages");
    Advantages a;
    a.method = require_attr_string(g.get(), name, "/advantages", "method");
    a.settings = h5::attr_string(g.get(), "settings", name).value_or("{}");
    a.edge = read_vector<float>(file, name, "/advantages/edge", Type::f32, "float32", N);
    t.advantages = std::move(a);
  }

  {
    Handle g = require_group(file, name, "/statistics");
    t.statistics.nfe = read_vector<std::int64_t>(file, name, "/statistics/nfe", Type::i64, "int64", P);
  }

  if (h5::exists(file, "/provenance")) {
    require(file, name, "/provenance", {{"string"}, {-1}});
    t.provenance = h5::read_strings(file, "/provenance", name + ": /provenance");
  }

  check_invariants(t, name);
  return t;
}

void write_prompts(hid_t file, const Prompts& p, const WriteOptions& options) {
  const h5::Storage s{options.zstd_level, 0};
  Handle g = h5::create_group(file, "prompts");
  h5::write_strings(g.get(), "text", p.text);
  write_vector(g.get(), "id", Type::i64, p.id, s);
  if (p.conditioning) write_floats(g.get(), "conditioning", *p.conditioning, s);
  if (p.pooled) write_floats(g.get(), "pooled", *p.pooled, s);
  if (p.mask) h5::write_numeric(g.get(), "mask", Type::u8, Type::u8, p.mask->shape, p.mask->data.data(), s);
}

TrajectoryLayout layout_of(const Trajectory& t) {
  TrajectoryLayout layout;
  layout.velocity = t.nodes.velocity.has_value();
  if (t.leaves.image && t.leaves.image->shape.size() == 4)
    layout.image_shape.assign(t.leaves.image->shape.begin() + 1, t.leaves.image->shape.end());
  if (t.leaves.path && t.leaves.path->shape.size() >= 2) layout.path_steps = t.leaves.path->shape[1];
  return layout;
}

void write_trajectory(hid_t file, const Trajectory& t, const WriteOptions& options) {
  TrajectoryWriter writer(file, t, layout_of(t), options, t.nodes.size(), t.leaves.size());
  writer.append(t.nodes, t.leaves, t.statistics.nfe);
  writer.finish(t.rewards, t.advantages, t.provenance);
}

TrajectoryWriter::TrajectoryWriter(hid_t file, const Trajectory& header, const TrajectoryLayout& layout,
                                   const WriteOptions& options, std::uint64_t expected_nodes,
                                   std::uint64_t expected_leaves)
    : file_(file), layout_(layout), options_(options), dtype_(header.rollout.latent_dtype),
      prompts_(header.prompts.text.size()) {
  const h5::Storage s{options.zstd_level, 0};
  h5::set_attr(file, "treerpo_format", std::string(kFormatName));
  h5::set_attr(file, "treerpo_format_version", std::vector<std::int64_t>{kFormatMajor, kFormatMinor});

  write_prompts(file, header.prompts, options);
  {
    const auto& r = header.rollout;
    Handle g = h5::create_group(file, "rollout");
    h5::set_attr(g.get(), "mode", r.mode);
    h5::set_attr(g.get(), "kernel", r.kernel);
    h5::set_attr(g.get(), "logprob_reduction", r.logprob_reduction);
    h5::set_attr(g.get(), "steps", std::vector<std::int64_t>{r.steps});
    h5::set_attr(g.get(), "shift", std::vector<double>{r.shift});
    h5::set_attr(g.get(), "depth", std::vector<std::int64_t>{r.depth});
    h5::set_attr(g.get(), "branching", r.branching);
    h5::set_attr(g.get(), "leaves_per_prompt", std::vector<std::int64_t>{r.leaves_per_prompt});
    h5::set_attr(g.get(), "window_start", std::vector<std::int64_t>{r.window_start});
    h5::set_attr(g.get(), "noise_levels", r.noise_levels);
    h5::set_attr(g.get(), "noise_block", std::vector<std::int64_t>{r.noise_block});
    h5::set_attr(g.get(), "iteration", std::vector<std::int64_t>{r.iteration});
    h5::set_attr(g.get(), "seed", std::vector<std::uint64_t>{r.seed});
    h5::set_attr(g.get(), "guidance", std::vector<double>{r.guidance});
    h5::set_attr(g.get(), "model_digest", r.model_digest);
    h5::set_attr(g.get(), "timestep_convention", r.timestep_convention);
    h5::set_attr(g.get(), "latent_dtype", std::string(latent_dtype_name(r.latent_dtype)));
    h5::set_attr(g.get(), "latent_shape", r.latent_shape);
    h5::set_attr(g.get(), "settings", r.settings);
    write_vector(g.get(), "sigmas", Type::f64, r.sigmas, s);
  }
  latent_shape_.assign(header.rollout.latent_shape.begin(), header.rollout.latent_shape.end());
  const Type latent = dtype_ == LatentDtype::float16 ? Type::f16 : Type::f32;
  {
    Handle g = h5::create_group(file, "nodes");
    const auto n = expected_nodes;
    h5::create_extendible(g.get(), "prompt", Type::i64, {}, s, n);
    h5::create_extendible(g.get(), "parent", Type::i64, {}, s, n);
    h5::create_extendible(g.get(), "depth", Type::i32, {}, s, n);
    h5::create_extendible(g.get(), "step", Type::i32, {}, s, n);
    h5::create_extendible_enum_u8(g.get(), "kind", node_kind_labels(), s, n);
    h5::create_extendible(g.get(), "latent", latent, latent_shape_, s, n);
    h5::create_extendible(g.get(), "log_prob", Type::f64, {}, s, n);
    h5::create_extendible(g.get(), "noise_std", Type::f32, {}, s, n);
    h5::create_extendible(g.get(), "noise_key", Type::u64, {}, s, n);
    if (layout.velocity) h5::create_extendible(g.get(), "velocity", latent, latent_shape_, s, n);
  }
  {
    Handle g = h5::create_group(file, "leaves");
    const auto n = expected_leaves;
    h5::create_extendible(g.get(), "node", Type::i64, {}, s, n);
    h5::create_extendible(g.get(), "prompt", Type::i64, {}, s, n);
    h5::create_extendible(g.get(), "latent", latent, latent_shape_, s, n);
    if (!layout.image_shape.empty()) h5::create_extendible(g.get(), "image", Type::u8, layout.image_shape, s, n);
    if (layout.path_steps) {
      std::vector<std::uint64_t> path{layout.path_steps};
      path.insert(path.end(), latent_shape_.begin(), latent_shape_.end());
      h5::create_extendible(g.get(), "path", latent, path, s, n);
    }
  }
}

void TrajectoryWriter::append(const Nodes& nodes, const Leaves& leaves, const std::vector<std::int64_t>& nfe) {
  const std::uint64_t N = nodes.size(), G = leaves.size();
  auto items = [](const std::vector<std::uint64_t>& shape) {
    std::uint64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  };
  const std::uint64_t latent_items = items(latent_shape_);
  auto rows_of = [&](const auto& a, std::uint64_t per_row, std::uint64_t rows, const char* what) {
    if (a.data.size() != rows * per_row)
      throw Error(ExitCode::software, std::string("TrajectoryWriter: ") + what + " has " +
                                          std::to_string(a.data.size()) + " values, expected " +
                                          std::to_string(rows * per_row));
  };
  rows_of(nodes.latent, latent_items, N, "/nodes/latent");
  rows_of(leaves.latent, latent_items, G, "/leaves/latent");
  if (layout_.velocity != nodes.velocity.has_value() || layout_.image_shape.empty() == leaves.image.has_value() ||
      (layout_.path_steps != 0) != leaves.path.has_value())
    throw Error(ExitCode::software, "TrajectoryWriter: a part's optional datasets differ from the file's layout");
  if (nodes.velocity) rows_of(*nodes.velocity, latent_items, N, "/nodes/velocity");
  if (leaves.image) rows_of(*leaves.image, items(layout_.image_shape), G, "/leaves/image");
  if (leaves.path) rows_of(*leaves.path, layout_.path_steps * latent_items, G, "/leaves/path");
  if (nodes.parent.size() != N || nodes.depth.size() != N || nodes.step.size() != N || nodes.kind.size() != N ||
      nodes.log_prob.size() != N || nodes.noise_std.size() != N || nodes.noise_key.size() != N ||
      leaves.prompt.size() != G)
    throw Error(ExitCode::software, "TrajectoryWriter: a part's node or leaf fields differ in length");

  // Node indices become the file's: the part's nodes follow those already written.
  const auto base = static_cast<std::int64_t>(nodes_);
  std::vector<std::int64_t> parent(nodes.parent), leaf_node(leaves.node);
  for (auto& p : parent)
    if (p >= 0) p += base;
  for (auto& n : leaf_node) n += base;
  std::vector<std::uint8_t> kinds(N);
  std::transform(nodes.kind.begin(), nodes.kind.end(), kinds.begin(),
                 [](NodeKind k) { return static_cast<std::uint8_t>(k); });
  auto append_floats = [&](const std::string& path, const FloatArray& a, std::uint64_t rows) {
    if (dtype_ == LatentDtype::float16) {
      std::vector<std::uint16_t> bits(a.data.size());
      std::transform(a.data.begin(), a.data.end(), bits.begin(), float_to_half_bits);
      h5::append_rows(file_, path, Type::f16, rows, bits.data());
    } else {
      h5::append_rows(file_, path, Type::f32, rows, a.data.data());
    }
  };
  h5::append_rows(file_, "/nodes/prompt", Type::i64, N, nodes.prompt.data());
  h5::append_rows(file_, "/nodes/parent", Type::i64, N, parent.data());
  h5::append_rows(file_, "/nodes/depth", Type::i32, N, nodes.depth.data());
  h5::append_rows(file_, "/nodes/step", Type::i32, N, nodes.step.data());
  h5::append_rows(file_, "/nodes/kind", Type::u8, N, kinds.data());
  append_floats("/nodes/latent", nodes.latent, N);
  h5::append_rows(file_, "/nodes/log_prob", Type::f64, N, nodes.log_prob.data());
  h5::append_rows(file_, "/nodes/noise_std", Type::f32, N, nodes.noise_std.data());
  h5::append_rows(file_, "/nodes/noise_key", Type::u64, N, nodes.noise_key.data());
  if (nodes.velocity) append_floats("/nodes/velocity", *nodes.velocity, N);
  h5::append_rows(file_, "/leaves/node", Type::i64, G, leaf_node.data());
  h5::append_rows(file_, "/leaves/prompt", Type::i64, G, leaves.prompt.data());
  append_floats("/leaves/latent", leaves.latent, G);
  if (leaves.image) h5::append_rows(file_, "/leaves/image", Type::u8, G, leaves.image->data.data());
  if (leaves.path) append_floats("/leaves/path", *leaves.path, G);
  nodes_ += N;
  leaves_ += G;
  nfe_.insert(nfe_.end(), nfe.begin(), nfe.end());
}

std::int64_t TrajectoryWriter::nfe_total() const {
  std::int64_t total = 0;
  for (auto v : nfe_) total += v;
  return total;
}

void TrajectoryWriter::finish(const std::vector<Reward>& rewards, const std::optional<Advantages>& advantages,
                              const std::vector<std::string>& provenance) {
  if (nfe_.size() != prompts_)
    throw Error(ExitCode::software, "TrajectoryWriter: parts cover " + std::to_string(nfe_.size()) + " of " +
                                        std::to_string(prompts_) + " prompts");
  const h5::Storage s{options_.zstd_level, 0};
  if (!rewards.empty()) {
    Handle g = h5::create_group(file_, "rewards");
    for (const auto& rw : rewards) {
      write_vector(g.get(), rw.name, Type::f32, rw.values, s);
      Handle d = h5::check(H5Dopen2(g.get(), rw.name.c_str(), H5P_DEFAULT), ExitCode::io, "/rewards/" + rw.name);
      h5::set_attr(d.get(), "weight", std::vector<double>{rw.weight});
      h5::set_attr(d.get(), "settings", rw.settings);
    }
  }
  if (advantages) {
    Handle g = h5::create_group(file_, "advantages");
    h5::set_attr(g.get(), "method", advantages->method);
    h5::set_attr(g.get(), "settings", advantages->settings);
    write_vector(g.get(), "edge", Type::f32, advantages->edge, s);
  }
  {
    Handle g = h5::create_group(file_, "statistics");
    write_vector(g.get(), "nfe", Type::i64, nfe_, s);
    h5::set_attr(g.get(), "nfe_total", std::vector<std::int64_t>{nfe_total()});
  }
  h5::write_strings(file_, "provenance", provenance);
}

std::vector<std::string> unknown_members(hid_t file) {
  std::vector<std::string> out;
  const auto& known = known_root_members();
  for (const auto& m : h5::members(file))
    if (std::find(known.begin(), known.end(), m) == known.end()) out.push_back(m);
  return out;
}

void copy_unknown_members(hid_t src, hid_t dst) {
  for (const auto& m : unknown_members(src)) h5::copy_object(src, m, dst, m);
}

}  // namespace treerpo::format
