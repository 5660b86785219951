// inspect.cpp -- file summaries for people (text) and programs (JSON).
#include "tools/inspect.hpp"

#include <CLI/CLI.hpp>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "core/terminal.hpp"
#include "format/prompt_file.hpp"
#include "format/samples_file.hpp"
#include "h5/dataset.hpp"

namespace treerpo::tools {
namespace {
using nlohmann::ordered_json;

template <typename T>
ordered_json stats(const std::vector<T>& v) {
  double n = 0, sum = 0, sq = 0, lo = INFINITY, hi = -INFINITY;
  std::size_t nan = 0;
  for (double f : v) {
    if (std::isnan(f)) { ++nan; continue; }
    n += 1; sum += f; sq += double(f) * f; lo = std::min(lo, double(f)); hi = std::max(hi, double(f));
  }
  ordered_json j;
  j["count"] = static_cast<std::uint64_t>(n);
  j["nan"] = nan;
  if (n > 0) {
    const double mean = sum / n;
    j["mean"] = mean;
    j["std"] = std::sqrt(std::max(0.0, sq / n - mean * mean));
    j["min"] = lo;
    j["max"] = hi;
  } else {
    j["mean"] = j["std"] = j["min"] = j["max"] = nullptr;
  }
  return j;
}

void walk(hid_t file, const std::string& group, ordered_json& datasets, ordered_json& groups) {
  h5::Handle g = h5::open_group(file, group, ExitCode::data, group);
  for (const auto& m : h5::members(g.get())) {
    const std::string path = (group == "/" ? "/" : group + "/") + m;
    if (h5::is_group(file, path)) {
      groups.push_back(path);
      walk(file, path, datasets, groups);
    } else {
      const auto info = h5::describe(file, path);
      datasets[path] = {
          {"dtype", info.dtype}, {"shape", info.shape}, {"chunks", info.chunks}, {"filters", info.filters}};
    }
  }
}

std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}
}  // namespace

ordered_json describe_file(const LoadedTrajectory& in) {
  const auto& t = in.trajectory;
  ordered_json j;
  j["file"] = in.file.name;
  j["bytes"] = in.file.bytes;
  j["digest"] = in.file.digest();
  j["format"] = format::kFormatName;
  j["format_version"] = {format::kFormatMajor, t.format_minor};
  j["counts"] = {{"prompts", t.prompts.text.size()}, {"nodes", t.nodes.size()}, {"leaves", t.leaves.size()}};
  const auto& r = t.rollout;
  j["rollout"] = {{"mode", r.mode},
                  {"kernel", r.kernel},
                  {"logprob_reduction", r.logprob_reduction},
                  {"steps", r.steps},
                  {"shift", r.shift},
                  {"depth", r.depth},
                  {"branching", r.branching},
                  {"leaves_per_prompt", r.leaves_per_prompt},
                  {"window_start", r.window_start},
                  {"noise_levels", r.noise_levels},
                  {"noise_block", r.noise_block},
                  {"iteration", r.iteration},
                  {"seed", std::to_string(r.seed)},
                  {"guidance", r.guidance},
                  {"model_digest", r.model_digest},
                  {"timestep_convention", r.timestep_convention},
                  {"latent_dtype", format::latent_dtype_name(r.latent_dtype)},
                  {"latent_shape", r.latent_shape},
                  {"sigmas", r.sigmas},
                  {"settings", ordered_json::parse(r.settings, nullptr, false)}};

  // Per prompt: node and leaf counts, nodes per depth, NFE.
  std::vector<std::map<int, std::int64_t>> per_depth(t.prompts.text.size());
  std::vector<std::int64_t> nodes(t.prompts.text.size()), leaves(t.prompts.text.size());
  for (std::size_t i = 0; i < t.nodes.size(); ++i) {
    const auto p = static_cast<std::size_t>(t.nodes.prompt[i]);
    ++nodes[p];
    ++per_depth[p][t.nodes.depth[i]];
  }
  for (auto p : t.leaves.prompt) ++leaves[static_cast<std::size_t>(p)];
  auto& prompts = j["prompts"] = ordered_json::array();
  for (std::size_t p = 0; p < t.prompts.text.size(); ++p) {
    std::vector<std::int64_t> widths;
    for (const auto& [d, count] : per_depth[p]) {
      (void)d;
      widths.push_back(count);
    }
    prompts.push_back({{"index", p},
                       {"id", t.prompts.id[p]},
                       {"text", t.prompts.text[p]},
                       {"nodes", nodes[p]},
                       {"leaves", leaves[p]},
                       {"nodes_per_depth", widths},
                       {"nfe", t.statistics.nfe[p]}});
  }
  auto& rewards = j["rewards"] = ordered_json::object();
  for (const auto& rw : t.rewards) {
    rewards[rw.name] = stats(rw.values);
    rewards[rw.name]["weight"] = rw.weight;
    rewards[rw.name]["settings"] = ordered_json::parse(rw.settings, nullptr, false);
  }
  if (t.advantages) {
    j["advantages"] = stats(t.advantages->edge);
    j["advantages"]["method"] = t.advantages->method;
    j["advantages"]["settings"] = ordered_json::parse(t.advantages->settings, nullptr, false);
  } else {
    j["advantages"] = nullptr;
  }
  std::int64_t total = 0;
  for (auto v : t.statistics.nfe) total += v;
  j["statistics"] = {{"nfe_total", total}};
  j["log_prob"] = stats(t.nodes.log_prob);

  ordered_json datasets = ordered_json::object(), groups = ordered_json::array();
  walk(in.file.file.get(), "/", datasets, groups);
  j["groups"] = groups;
  j["unknown_groups"] = format::unknown_members(in.file.file.get());
  j["datasets"] = datasets;
  auto& prov = j["provenance"] = ordered_json::array();
  for (const auto& rec : t.provenance) prov.push_back(ordered_json::parse(rec, nullptr, false));
  return j;
}

std::string describe_text(const ordered_json& j, const InspectOptions& o) {
  std::ostringstream s;
  const auto& r = j["rollout"];
  s << j["file"].get<std::string>() << ": treerpo " << j["format"].get<std::string>() << " " << j["format_version"][0]
    << "." << j["format_version"][1] << ", " << j["bytes"] << " bytes, " << j["digest"].get<std::string>() << "\n";
  s << "rollout: mode " << r["mode"].get<std::string>() << ", kernel " << r["kernel"].get<std::string>() << ", steps "
    << r["steps"] << " (shift " << r["shift"] << "), window " << r["window_start"] << ".."
    << r["window_start"].get<std::int64_t>() + r["depth"].get<std::int64_t>() - 1 << ", branching "
    << r["branching"].dump() << ", iteration " << r["iteration"] << ", seed " << r["seed"].get<std::string>() << "\n";
  s << "latents: " << r["latent_dtype"].get<std::string>() << " " << r["latent_shape"].dump() << ", model "
    << r["model_digest"].get<std::string>() << "\n";
  s << "counts: " << j["counts"]["prompts"] << " prompts, " << j["counts"]["nodes"] << " nodes, "
    << j["counts"]["leaves"] << " leaves; NFE " << j["statistics"]["nfe_total"] << "\n";
  const auto& prompts = j["prompts"];
  const std::size_t rows = o.prompt_rows == 0 ? prompts.size() : std::min(o.prompt_rows, prompts.size());
  s << "prompts:\n";
  for (std::size_t i = 0; i < rows; ++i) {
    const auto& p = prompts[i];
    s << "  [" << p["index"] << "] id " << p["id"] << ": " << p["nodes"] << " nodes " << p["nodes_per_depth"].dump()
      << ", " << p["leaves"] << " leaves, NFE " << p["nfe"] << "  \"" << p["text"].get<std::string>() << "\"\n";
  }
  if (rows < prompts.size()) s << "  ... " << prompts.size() - rows << " more (--prompt-rows 0 lists all)\n";
  s << "groups:";
  for (const auto& g : j["groups"]) s << " " << g.get<std::string>();
  s << "\n";
  if (!j["unknown_groups"].empty())
    s << "groups from other tools (kept as they are): " << j["unknown_groups"].dump() << "\n";
  for (const auto& [name, st] : j["rewards"].items()) {
    s << "reward " << name << " (weight " << st["weight"] << "): ";
    if (st["mean"].is_null()) s << "no values\n";
    else
      s << "mean " << fmt(st["mean"]) << ", std " << fmt(st["std"]) << ", min " << fmt(st["min"]) << ", max "
        << fmt(st["max"]) << "\n";
  }
  if (!j["advantages"].is_null()) {
    const auto& a = j["advantages"];
    s << "advantages (" << a["method"].get<std::string>() << "): " << a["count"] << " edges";
    if (!a["mean"].is_null()) s << ", mean " << fmt(a["mean"]) << ", std " << fmt(a["std"]);
    s << "\n";
  }
  if (o.datasets) {
    s << "datasets:\n";
    for (const auto& [path, d] : j["datasets"].items())
      s << "  " << path << " " << d["dtype"].get<std::string>() << " " << d["shape"].dump() << " chunks "
        << d["chunks"].dump() << " " << d["filters"].dump() << "\n";
  }
  s << "provenance:\n";
  std::size_t k = 0;
  for (const auto& rec : j["provenance"]) {
    s << "  " << k++ << ". ";
    if (!rec.is_object()) { s << "(unreadable record)\n"; continue; }
    s << rec.value("tool", "?") << " " << rec.value("version", "?") << " (" << rec.value("git_revision", "?") << ") "
      << rec.value("time", "?") << ":";
    if (rec.contains("argv"))
      for (const auto& a : rec["argv"]) s << " " << a.get<std::string>();
    s << "\n";
  }
  return s.str();
}

ordered_json describe_prompt_file(const h5::InputFile& file) {
  const hid_t f = file.file.get();
  ordered_json j;
  j["file"] = file.name;
  j["bytes"] = file.bytes;
  j["digest"] = file.digest();
  j["format"] = format::kPromptFormatName;
  j["format_version"] = {format::kFormatMajor, format::check_format(f, file.name, format::kPromptFormatName)};
  const auto p = format::read_prompts(f, file.name);
  j["counts"] = {{"prompts", p.text.size()}};
  auto shape = [](const auto& a) { return a ? ordered_json(a->shape) : ordered_json(nullptr); };
  j["embeddings"] = {{"conditioning", shape(p.conditioning)}, {"mask", shape(p.mask)}, {"pooled", shape(p.pooled)}};
  auto& prompts = j["prompts"] = ordered_json::array();
  for (std::size_t i = 0; i < p.text.size(); ++i) {
    ordered_json row{{"index", i}, {"id", p.id[i]}, {"text", p.text[i]}};
    if (p.mask) {
      const std::size_t L = p.mask->shape[1];
      std::int64_t tokens = 0;
      for (std::size_t k = 0; k < L; ++k) tokens += p.mask->data[i * L + k] ? 1 : 0;
      row["tokens"] = tokens;
    }
    prompts.push_back(row);
  }
  ordered_json datasets = ordered_json::object(), groups = ordered_json::array();
  walk(f, "/", datasets, groups);
  j["groups"] = groups;
  j["datasets"] = datasets;
  auto& prov = j["provenance"] = ordered_json::array();
  if (h5::exists(f, "/provenance"))
    for (const auto& rec : h5::read_strings(f, "/provenance", file.name + ": /provenance"))
      prov.push_back(ordered_json::parse(rec, nullptr, false));
  return j;
}

std::string describe_prompt_text(const ordered_json& j, const InspectOptions& o) {
  std::ostringstream s;
  s << j["file"].get<std::string>() << ": treerpo prompts " << j["format_version"][0] << "." << j["format_version"][1]
    << ", " << j["bytes"] << " bytes, " << j["digest"].get<std::string>() << "\n";
  s << "counts: " << j["counts"]["prompts"] << " prompts\n";
  for (const auto& [name, shape] : j["embeddings"].items())
    s << name << ": " << (shape.is_null() ? std::string("absent") : shape.dump()) << "\n";
  const auto& prompts = j["prompts"];
  const std::size_t rows = o.prompt_rows == 0 ? prompts.size() : std::min(o.prompt_rows, prompts.size());
  s << "prompts:\n";
  for (std::size_t i = 0; i < rows; ++i) {
    const auto& p = prompts[i];
    s << "  [" << p["index"] << "] id " << p["id"];
    if (p.contains("tokens")) s << ", " << p["tokens"] << " tokens";
    s << "  \"" << p["text"].get<std::string>() << "\"\n";
  }
  if (rows < prompts.size()) s << "  ... " << prompts.size() - rows << " more (--prompt-rows 0 lists all)\n";
  return s.str();
}

// A samples file of `evaluate --samples-out`: validated by reading it whole.
ordered_json describe_samples_file(const h5::InputFile& file) {
  const auto s = format::read_samples(file);
  ordered_json j;
  j["file"] = file.name;
  j["bytes"] = file.bytes;
  j["digest"] = file.digest();
  j["format"] = format::kSamplesFormatName;
  j["format_version"] = {format::kFormatMajor,
                         format::check_format(file.file.get(), file.name, format::kSamplesFormatName)};
  std::set<std::int64_t> prompts(s.prompt_id.begin(), s.prompt_id.end());
  j["counts"] = {{"items", s.prompt_id.size()}, {"prompts", prompts.size()}};
  j["sampling"] = {{"seed", s.seed}};
  auto& cps = j["checkpoints"] = ordered_json::array();
  for (const auto& c : s.checkpoints)
    cps.push_back({{"group", c.name}, {"path", c.path}, {"digest", c.digest},
                   {"images", {s.prompt_id.size(), c.height, c.width, 3}}});
  auto& prov = j["provenance"] = ordered_json::array();
  for (const auto& rec : s.provenance) prov.push_back(ordered_json::parse(rec, nullptr, false));
  return j;
}

std::string describe_samples_text(const ordered_json& j) {
  std::ostringstream s;
  s << j["file"].get<std::string>() << ": treerpo samples " << j["format_version"][0] << "." << j["format_version"][1]
    << ", " << j["bytes"] << " bytes, " << j["digest"].get<std::string>() << "\n";
  s << "counts: " << j["counts"]["items"] << " images of " << j["counts"]["prompts"] << " prompts per checkpoint, seed "
    << j["sampling"]["seed"].get<std::string>() << "\n";
  for (const auto& c : j["checkpoints"])
    s << "/" << c["group"].get<std::string>() << "/images " << c["images"].dump() << ": "
      << c["path"].get<std::string>() << " (" << c["digest"].get<std::string>() << ")\n";
  return s.str();
}

void add_inspect_options(CLI::App& app, InspectOptions& o) {
  app.add_option("input", o.input, "Trajectory or prompt file; - = stdin (the default)");
  app.add_option("--prompt-rows", o.prompt_rows, "Prompts listed in the text summary; 0 = all")->capture_default_str();
  app.add_flag("--datasets", o.datasets, "List every dataset with dtype, shape, chunks and filters");
}

void validate(const InspectOptions&, const cli::Given& given) {
  if (!given("input") && terminal::is_terminal(STDIN_FILENO)) throw cli::ShowUsage{};
}

int run_inspect(const InspectOptions& o, cli::Context& ctx, const std::string&) {
  h5::InputFile file = h5::open_input(o.input);
  const auto kind = h5::attr_string(file.file.get(), "treerpo_format", file.name);
  if (kind && *kind == format::kPromptFormatName) {  // a prompt file users wrote: check and show it
    const auto j = describe_prompt_file(file);
    if (ctx.json) std::printf("%s\n", j.dump(2).c_str());
    else std::fputs(describe_prompt_text(j, o).c_str(), stdout);
    return 0;
  }
  if (kind && *kind == format::kSamplesFormatName) {  // what evaluate --samples-out wrote
    const auto j = describe_samples_file(file);
    if (ctx.json) std::printf("%s\n", j.dump(2).c_str());
    else std::fputs(describe_samples_text(j).c_str(), stdout);
    return 0;
  }
  const LoadedTrajectory in = load_trajectory(std::move(file));
  const auto j = describe_file(in);
  if (ctx.json) std::printf("%s\n", j.dump(2).c_str());
  else std::fputs(describe_text(j, o).c_str(), stdout);
  return 0;
}

cli::ToolSpec inspect_spec() {
  cli::ToolSpec spec;
  spec.name = "treerpo-inspect";
  spec.summary =
      "Summarise a trajectory file (prompts, tree shapes, groups, statistics, provenance) or check a prompt file";
  spec.footer = "Example: treerpo-synth --count 2 -o - | treerpo-inspect; see treerpo-inspect(1).";
  return cli::make_tool<InspectOptions>(spec, add_inspect_options, validate, run_inspect);
}

}  // namespace treerpo::tools
