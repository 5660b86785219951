// test_options.cpp -- every tool's parser: common options present, no spelling defined twice,
// short flags mean the same everywhere, every visible option has help text (llama.cpp's
// test-arg-parser idea).
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <map>
#include <set>

#include "cli/common_options.hpp"
#include "tools/inspect.hpp"
#include "tools/merge.hpp"
#include "tools/model_tool.hpp"
#include "tools/shapes_tool.hpp"
#include "tools/update.hpp"
#include "tools/evaluate.hpp"
#include "tools/tree_rollout.hpp"
#include "tools/score.hpp"
#include "tools/advantage.hpp"
#include "tools/synth.hpp"

using namespace treerpo;

namespace {
std::vector<cli::ToolSpec> all_tools() {
  return {tools::inspect_spec(), tools::merge_spec(), tools::synth_spec(), tools::model_spec(), tools::shapes_spec(), tools::update_spec(),
          tools::evaluate_spec(), tools::tree_rollout_spec(), tools::score_spec(), tools::advantage_spec()};
}
}  // namespace

TEST(Options, SharedSetIsConsistentAcrossTools) {
  std::map<std::string, std::string> short_meaning;  // -x -> --long, across tools
  for (const auto& spec : all_tools()) {
    CLI::App app;
    std::string output = "-";
    cli::CommonValues values;
    cli::build_app(app, spec, output, values);
    std::set<std::string> names;
    std::vector<const CLI::Option*> options;
    for (const CLI::Option* opt : app.get_options()) options.push_back(opt);
    for (CLI::App* group : app.get_subcommands([](CLI::App* sub) { return sub->get_name().empty(); }))
      for (const CLI::Option* opt : group->get_options())
        if (std::find(options.begin(), options.end(), opt) == options.end() && opt->get_name() != "--help")
          options.push_back(opt);
    for (const CLI::Option* opt : options) {
      for (const auto& l : opt->get_lnames()) EXPECT_TRUE(names.insert("--" + l).second) << spec.name << " --" << l;
      for (const auto& s : opt->get_snames()) {
        EXPECT_TRUE(names.insert("-" + s).second) << spec.name << " -" << s;
        const std::string lname = opt->get_lnames().empty() ? "" : opt->get_lnames()[0];
        auto [it, fresh] = short_meaning.emplace("-" + s, lname);
        EXPECT_EQ(it->second, lname) << "-" << s << " means --" << it->second << " elsewhere, --" << lname << " in "
                                     << spec.name;
        (void)fresh;
      }
      if (!opt->get_group().empty()) {
        EXPECT_FALSE(opt->get_description().empty()) << spec.name << " " << opt->get_name();
      }
    }
    for (const char* common : {"--quiet", "--verbose", "--json", "--config", "--help"})
      EXPECT_TRUE(names.count(common)) << spec.name << " lacks " << common;
    if (spec.common.output) {
      EXPECT_TRUE(names.count("--output") && names.count("--force")) << spec.name;
    }
    if (spec.common.seed) {
      EXPECT_TRUE(names.count("--seed")) << spec.name;
    }
    if (spec.common.shard) {
      EXPECT_TRUE(names.count("--shard")) << spec.name;
    }
  }
}
