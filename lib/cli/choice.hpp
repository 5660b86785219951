// choice.hpp -- an option whose value is one of a closed set of names, held as an enum: the
// parser checks the name, the tool sees only the enum, and the replayable options in the
// provenance record keep the name.
#pragma once
#include <CLI/CLI.hpp>

#include <string>
#include <utility>
#include <vector>

namespace treerpo::cli {

/// Adds option `name` that sets `target` to the value of the typed choice; the help shows the
/// names and the current value of `target` as the default.
template <class E>
CLI::Option* add_choice(CLI::App& app, const std::string& name, E& target,
                        const std::vector<std::pair<std::string, E>>& choices, const std::string& description) {
  std::vector<std::string> names;
  std::string current;
  for (const auto& [text, value] : choices) {
    names.push_back(text);
    if (value == target && current.empty()) current = text;
  }
  auto* opt = app.add_option_function<std::string>(
      name,
      [&target, choices](const std::string& typed) {
        for (const auto& [text, value] : choices)
          if (text == typed) target = value;
      },
      description);
  opt->check(CLI::IsMember(names))->default_str(current);
  return opt;
}

}  // namespace treerpo::cli
