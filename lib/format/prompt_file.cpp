// prompt_file.cpp -- text and HDF5 prompt files.
#include "format/prompt_file.hpp"

#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/error.hpp"
#include "h5/dataset.hpp"
#include "h5/io.hpp"

namespace treerpo::format {
namespace {
Prompts from_text(std::istream& in, const std::string& name) {
  Prompts p;
  std::string line;
  std::size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    p.text.push_back(line);
    p.id.push_back(static_cast<std::int64_t>(number - 1));  // id = line index: stable when blanks move
  }
  if (p.text.empty()) throw DataError(name + ": no prompts (expected one prompt per line, or an HDF5 prompt file)");
  return p;
}
}  // namespace

Prompts read_prompt_file(const std::string& path) {
  // Peek at the first bytes: HDF5 files start with the 8-byte signature.
  std::string head;
  if (path != "-") {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw NoInputError(with_errno(path, errno));
    head.resize(8);
    f.read(head.data(), 8);
    head.resize(static_cast<std::size_t>(f.gcount()));
    if (head.size() == 8 && std::memcmp(head.data(), "\x89HDF\r\n\x1a\n", 8) == 0) {
      auto in = h5::open_input(path);
      const auto format = h5::attr_string(in.file.get(), "treerpo_format", path);
      check_format(in.file.get(), path, format && *format == kPromptFormatName ? kPromptFormatName : kFormatName);
      return read_prompts(in.file.get(), path);
    }
    std::ifstream text(path);
    return from_text(text, path);
  }
  std::stringstream buffer;
  buffer << std::cin.rdbuf();
  const std::string bytes = buffer.str();
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), "\x89HDF\r\n\x1a\n", 8) == 0) {
    auto in = h5::open_image(std::make_shared<std::vector<char>>(bytes.begin(), bytes.end()), "<stdin>");
    const auto format = h5::attr_string(in.file.get(), "treerpo_format", "<stdin>");
    check_format(in.file.get(), "<stdin>", format && *format == kPromptFormatName ? kPromptFormatName : kFormatName);
    return read_prompts(in.file.get(), "<stdin>");
  }
  std::istringstream text(bytes);
  return from_text(text, "<stdin>");
}

void write_prompt_file(const std::string& path, const Prompts& prompts, const std::vector<std::string>& provenance,
                       bool force, const std::string& tool) {
  h5::OutputFile out(path, force, tool);
  h5::set_attr(out.id(), "treerpo_format", std::string(kPromptFormatName));
  h5::set_attr(out.id(), "treerpo_format_version", std::vector<std::int64_t>{kFormatMajor, kFormatMinor});
  write_prompts(out.id(), prompts, WriteOptions{});
  h5::write_strings(out.id(), "provenance", provenance);
  out.commit();
}

}  // namespace treerpo::format
