// summary.cpp -- the --json summary line.
#include "cli/summary.hpp"

#include <cstdio>

namespace treerpo::cli {

void print_json_summary(const Context& ctx, const std::string& output, const nlohmann::ordered_json& fields) {
  nlohmann::ordered_json line{{"tool", ctx.tool}, {"output", output}};
  for (const auto& [key, value] : fields.items())
    if (key != "tool" && key != "output") line[key] = value;
  std::printf("%s\n", line.dump().c_str());
}

}  // namespace treerpo::cli
