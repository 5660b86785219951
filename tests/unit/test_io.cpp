// test_io.cpp -- inputs from files and images, atomic outputs, refusals.
#include <gtest/gtest.h>
#include <dirent.h>
#include <sys/stat.h>

#include <fstream>

#include "core/digest.hpp"
#include "core/error.hpp"
#include "core/terminal.hpp"
#include "test_util.hpp"

using namespace treerpo;

namespace {
bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}
std::size_t entries(const std::string& dir) {
  std::size_t n = 0;
  for (auto* d = opendir(dir.c_str()); d;) {
    auto* e = readdir(d);
    if (!e) { closedir(d); break; }
    if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") ++n;
  }
  return n;
}
}  // namespace

TEST(Io, ImageAndFileReadTheSame) {
  const auto dir = test::temp_dir();
  const auto t = test::full_trajectory(format::LatentDtype::float16);
  test::write_file(dir + "/a.h5", t);
  std::ifstream f(dir + "/a.h5", std::ios::binary);
  auto bytes = std::make_shared<std::vector<char>>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto img = h5::open_image(bytes, "<stdin>");
  auto file = h5::open_input(dir + "/a.h5");
  EXPECT_EQ(img.digest(), file.digest());
  EXPECT_EQ(file.digest(), sha256_of_file(dir + "/a.h5"));
  test::expect_equal(format::read_trajectory(img.file.get(), "<stdin>"), format::read_trajectory(file.file.get(), "a"));
}

TEST(Io, InputErrorsHaveTheirCodes) {
  const auto dir = test::temp_dir();
  auto code_of = [](const std::string& p) {
    try { h5::open_input(p); } catch (const Error& e) { return e.exit_code(); }
    return ExitCode::ok;
  };
  EXPECT_EQ(code_of(dir + "/missing.h5"), ExitCode::no_input);
  std::ofstream(dir + "/empty.h5").close();
  EXPECT_EQ(code_of(dir + "/empty.h5"), ExitCode::data);
  std::ofstream(dir + "/text.h5") << "hello world, not hdf5";
  EXPECT_EQ(code_of(dir + "/text.h5"), ExitCode::data);
  test::write_file(dir + "/good.h5", test::full_trajectory(format::LatentDtype::float32));
  truncate((dir + "/good.h5").c_str(), 600);
  EXPECT_EQ(code_of(dir + "/good.h5"), ExitCode::data);
}

TEST(Io, OutputsAreAtomicAndRefusals) {
  const auto dir = test::temp_dir();
  const std::string out = dir + "/o.h5";
  {
    h5::OutputFile f(out, false, "test");
    format::write_trajectory(f.id(), test::full_trajectory(format::LatentDtype::float32));
    EXPECT_FALSE(exists(out));  // not visible before commit
  }  // destroyed without commit: nothing remains, not even the temporary
  EXPECT_EQ(entries(dir), 0u);
  test::write_file(out, test::full_trajectory(format::LatentDtype::float32));
  EXPECT_THROW(h5::OutputFile(out, false, "test"), UsageError);  // exists, no --force
  EXPECT_THROW(h5::OutputFile(dir + "/no/such/dir/o.h5", false, "test"), CreateError);
  EXPECT_THROW(h5::OutputFile(dir, true, "test"), CreateError);  // a directory
  terminal::set_fake_terminal(1, true);
  EXPECT_THROW(h5::OutputFile("-", false, "test"), UsageError);
  terminal::set_fake_terminal(1, false);
  EXPECT_EQ(entries(dir), 1u);
}
