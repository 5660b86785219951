// test_format.cpp -- trajectory format 1: exact round trips and validation of bad files.
#include <gtest/gtest.h>

#include <cstring>

#include "core/digest.hpp"
#include "core/error.hpp"
#include "core/half.hpp"
#include "h5/dataset.hpp"
#include "test_util.hpp"

using namespace treerpo;

namespace {
class FormatTest : public ::testing::Test {
 protected:
  std::string dir = test::temp_dir();
  std::string path(const std::string& name) const { return dir + "/" + name; }
};
}  // namespace

TEST_F(FormatTest, RoundTripFloat32EveryDatasetAndAttribute) {
  const auto t = test::full_trajectory(format::LatentDtype::float32);
  for (int level : {0, 3}) {
    test::write_file(path("f32.h5"), t, level);
    test::expect_equal(t, test::read_file(path("f32.h5")));
  }
}

TEST_F(FormatTest, RoundTripFloat16KeepsRoundedValuesExactly) {
  const auto t = test::full_trajectory(format::LatentDtype::float16);
  test::write_file(path("f16.h5"), t);
  // Values synthesize() rounded are stored exactly; the root latents were not rounded in memory,
  // so compare those against round_to_half of the originals.
  auto expected = t;
  for (auto& v : expected.nodes.latent.data) v = round_to_half(v);
  for (auto& v : expected.leaves.latent.data) v = round_to_half(v);
  for (auto& v : expected.nodes.velocity->data) v = round_to_half(v);
  const auto back = test::read_file(path("f16.h5"));
  test::expect_equal(expected, back);
  auto in = h5::open_input(path("f16.h5"));
  EXPECT_EQ(h5::describe(in.file.get(), "/nodes/latent").dtype, "float16");
  EXPECT_EQ(h5::describe(in.file.get(), "/nodes/log_prob").dtype, "float64");  // always float64 (format 1.2)
}

TEST_F(FormatTest, DatasetsAreChunkedCompressedAndChecksummed) {
  test::write_file(path("c.h5"), test::full_trajectory(format::LatentDtype::float32, 40));
  auto in = h5::open_input(path("c.h5"));
  const auto info = h5::describe(in.file.get(), "/nodes/latent");
  EXPECT_EQ(info.filters, (std::vector<std::string>{"shuffle", "zstd", "fletcher32"}));
  ASSERT_EQ(info.chunks.size(), 4u);
  EXPECT_LT(info.chunks[0], info.shape[0]);  // one node's latent is read without the rest
}

TEST_F(FormatTest, IdenticalContentGivesIdenticalBytes) {
  const auto t = test::full_trajectory(format::LatentDtype::float32);
  test::write_file(path("a.h5"), t);
  test::write_file(path("b.h5"), t);
  EXPECT_EQ(sha256_of_file(path("a.h5")), sha256_of_file(path("b.h5")));
}

namespace {
// Nodes and leaves of prompts [begin, end) of `t`, with node indices counted from the part's
// first node, as a producer that streams waves of prompts holds them.
format::Trajectory part_of(const format::Trajectory& t, std::int64_t begin, std::int64_t end) {
  format::Trajectory part;
  std::int64_t first = -1;
  auto take = [](format::FloatArray& to, const format::FloatArray& from, std::size_t row) {
    const std::size_t items = from.data.size() / from.shape[0];
    if (to.shape.empty()) to.shape = from.shape, to.shape[0] = 0;
    ++to.shape[0];
    to.data.insert(to.data.end(), from.data.begin() + static_cast<std::ptrdiff_t>(row * items),
                   from.data.begin() + static_cast<std::ptrdiff_t>((row + 1) * items));
  };
  auto& n = part.nodes;
  if (t.nodes.velocity) n.velocity = format::FloatArray{};
  for (std::size_t i = 0; i < t.nodes.size(); ++i) {
    if (t.nodes.prompt[i] < begin || t.nodes.prompt[i] >= end) continue;
    if (first < 0) first = static_cast<std::int64_t>(i);
    n.prompt.push_back(t.nodes.prompt[i]);
    n.parent.push_back(t.nodes.parent[i] < 0 ? -1 : t.nodes.parent[i] - first);
    n.depth.push_back(t.nodes.depth[i]);
    n.step.push_back(t.nodes.step[i]);
    n.kind.push_back(t.nodes.kind[i]);
    n.log_prob.push_back(t.nodes.log_prob[i]);
    n.noise_std.push_back(t.nodes.noise_std[i]);
    n.noise_key.push_back(t.nodes.noise_key[i]);
    take(n.latent, t.nodes.latent, i);
    if (t.nodes.velocity) take(*n.velocity, *t.nodes.velocity, i);
  }
  auto& l = part.leaves;
  if (t.leaves.path) l.path = format::FloatArray{};
  if (t.leaves.image) l.image = format::ByteArray{t.leaves.image->shape, {}}, l.image->shape[0] = 0;
  for (std::size_t g = 0; g < t.leaves.size(); ++g) {
    if (t.leaves.prompt[g] < begin || t.leaves.prompt[g] >= end) continue;
    l.node.push_back(t.leaves.node[g] - first);
    l.prompt.push_back(t.leaves.prompt[g]);
    take(l.latent, t.leaves.latent, g);
    if (t.leaves.path) take(*l.path, *t.leaves.path, g);
    if (t.leaves.image) {
      const std::size_t items = t.leaves.image->data.size() / t.leaves.image->shape[0];
      ++l.image->shape[0];
      l.image->data.insert(l.image->data.end(), t.leaves.image->data.begin() + static_cast<std::ptrdiff_t>(g * items),
                           t.leaves.image->data.begin() + static_cast<std::ptrdiff_t>((g + 1) * items));
    }
  }
  part.statistics.nfe.assign(t.statistics.nfe.begin() + begin, t.statistics.nfe.begin() + end);
  return part;
}
}  // namespace

TEST_F(FormatTest, WrittenInPartsEqualsWrittenWhole) {
  for (auto dtype : {format::LatentDtype::float32, format::LatentDtype::float16}) {
    auto t = test::full_trajectory(dtype, 5);
    // Every optional dataset, values exact in either dtype.
    const std::uint64_t G = t.leaves.size(), S = 2;  // steps 6 - window start 1 - depth 2 - 1
    t.leaves.path = format::FloatArray{{G, S, 3, 8, 8}, std::vector<float>(G * S * 3 * 8 * 8)};
    for (std::size_t i = 0; i < t.leaves.path->data.size(); ++i)
      t.leaves.path->data[i] = round_to_half(0.001f * static_cast<float>(i % 997));
    t.leaves.image = format::ByteArray{{G, 8, 8, 3}, std::vector<std::uint8_t>(G * 8 * 8 * 3)};
    for (std::size_t i = 0; i < t.leaves.image->data.size(); ++i)
      t.leaves.image->data[i] = static_cast<std::uint8_t>(i * 7);
    test::write_file(path("whole.h5"), t);
    {
      h5::OutputFile out(path("parts.h5"), true, "test");
      format::TrajectoryWriter writer(out.id(), t, format::layout_of(t), {});
      for (auto [begin, end] : {std::pair{0, 2}, {2, 3}, {3, 3}, {3, 5}}) {
        const auto part = part_of(t, begin, end);
        writer.append(part.nodes, part.leaves, part.statistics.nfe);
      }
      EXPECT_EQ(writer.nodes_written(), t.nodes.size());
      EXPECT_EQ(writer.leaves_written(), t.leaves.size());
      writer.finish(t.rewards, t.advantages, t.provenance);
      out.commit();
    }
    test::expect_equal(test::read_file(path("whole.h5")), test::read_file(path("parts.h5")));
  }
}

TEST_F(FormatTest, WriterRefusesPartsThatDoNotFit) {
  const auto t = test::full_trajectory(format::LatentDtype::float32, 3);
  h5::OutputFile out(path("bad.h5"), true, "test");
  format::TrajectoryWriter writer(out.id(), t, format::layout_of(t), {});
  auto part = part_of(t, 0, 1);
  part.nodes.velocity.reset();  // the file has /nodes/velocity
  EXPECT_THROW(writer.append(part.nodes, part.leaves, part.statistics.nfe), Error);
  part = part_of(t, 0, 1);
  writer.append(part.nodes, part.leaves, part.statistics.nfe);
  EXPECT_THROW(writer.finish({}, std::nullopt, {}), Error);  // prompts 1 and 2 missing
}

namespace {
// Writes a good file, lets `edit` damage it through the raw HDF5 API, and returns the error.
std::string error_after(const std::string& file, const std::function<void(hid_t)>& edit, ExitCode* code) {
  test::write_file(file, test::full_trajectory(format::LatentDtype::float32));
  {
    h5::Handle f(H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    edit(f.get());
  }
  try {
    test::read_file(file);
  } catch (const Error& e) {
    *code = e.exit_code();
    return e.what();
  }
  return "";
}
}  // namespace

TEST_F(FormatTest, RefusesNewerMajorAcceptsNewerMinor) {
  ExitCode code{};
  auto msg = error_after(path("v.h5"), [](hid_t f) { h5::set_attr(f, "treerpo_format_version", std::vector<std::int64_t>{2, 0}); }, &code);
  EXPECT_EQ(code, ExitCode::data);
  EXPECT_NE(msg.find("file is format 2.0; this build reads 1.x"), std::string::npos) << msg;
  msg = error_after(path("m.h5"), [](hid_t f) { h5::set_attr(f, "treerpo_format_version", std::vector<std::int64_t>{1, 7}); }, &code);
  EXPECT_EQ(msg, "");
  EXPECT_EQ(test::read_file(path("m.h5")).format_minor, 7);
}

// Format 1.3: the /rollout seed is uint64 and guidance a float64 attribute; 1.2 and earlier
// files (seed as a decimal string, guidance in the settings JSON) still read.
TEST_F(FormatTest, TypedSeedAndGuidanceAndTheirOlderForm) {
  auto t = test::full_trajectory(format::LatentDtype::float32);
  t.rollout.seed = 18446744073709551615ULL;  // 2^64 - 1: beyond int64 and double
  t.rollout.guidance = 4.5;
  test::write_file(path("typed.h5"), t);
  const auto back = test::read_file(path("typed.h5"));
  EXPECT_EQ(back.rollout.seed, 18446744073709551615ULL);
  EXPECT_EQ(back.rollout.guidance, 4.5);
  auto older = [](const std::string& seed, const std::string& settings) {
    return [seed, settings](hid_t f) {
      h5::set_attr(f, "treerpo_format_version", std::vector<std::int64_t>{1, 2});
      h5::Handle g(H5Gopen2(f, "rollout", H5P_DEFAULT));
      h5::set_attr(g.get(), "seed", seed);
      H5Adelete(g.get(), "guidance");
      h5::set_attr(g.get(), "settings", settings);
    };
  };
  ExitCode code{};
  EXPECT_EQ(error_after(path("old.h5"), older("7", R"({"guidance": 3})"), &code), "");
  const auto old = test::read_file(path("old.h5"));
  EXPECT_EQ(old.rollout.seed, 7u);
  EXPECT_EQ(old.rollout.guidance, 3.0);
  EXPECT_EQ(error_after(path("old1.h5"), older("12", "{}"), &code), "");
  EXPECT_EQ(test::read_file(path("old1.h5")).rollout.guidance, 1.0);  // no guidance recorded: none used
  const auto bad = error_after(path("bad.h5"), older("-3", "{}"), &code);
  EXPECT_EQ(code, ExitCode::data);
  EXPECT_NE(bad.find("/rollout attribute seed: '-3' is not an unsigned 64-bit decimal"), std::string::npos) << bad;
  const auto string_in_13 = error_after(
      path("s13.h5"),
      [](hid_t f) {
        h5::Handle g(H5Gopen2(f, "rollout", H5P_DEFAULT));
        h5::set_attr(g.get(), "seed", std::string("7"));
      },
      &code);
  EXPECT_EQ(code, ExitCode::data);
  EXPECT_NE(string_in_13.find("attribute seed: expected uint64"), std::string::npos) << string_in_13;
}

// Format 1.4: the /rollout noise_block (SDE noise on pixel blocks); files before it have none,
// which means isotropic noise (1). A block that does not tile the latent is refused on read.
TEST_F(FormatTest, NoiseBlockAndItsAbsenceBefore14) {
  auto t = test::full_trajectory(format::LatentDtype::float32);  // latents 3 x 8 x 8
  t.rollout.noise_block = 4;
  test::write_file(path("b4.h5"), t);
  EXPECT_EQ(test::read_file(path("b4.h5")).rollout.noise_block, 4);
  ExitCode code{};
  EXPECT_EQ(error_after(path("b13.h5"),
                        [](hid_t f) {
                          h5::set_attr(f, "treerpo_format_version", std::vector<std::int64_t>{1, 3});
                          h5::Handle g(H5Gopen2(f, "rollout", H5P_DEFAULT));
                          H5Adelete(g.get(), "noise_block");
                        },
                        &code),
            "");
  EXPECT_EQ(test::read_file(path("b13.h5")).rollout.noise_block, 1);
  for (const std::int64_t bad : {0, 3}) {
    const auto msg = error_after(
        path("bad-block.h5"),
        [bad](hid_t f) {
          h5::Handle g(H5Gopen2(f, "rollout", H5P_DEFAULT));
          h5::set_attr(g.get(), "noise_block", std::vector<std::int64_t>{bad});
        },
        &code);
    EXPECT_EQ(code, ExitCode::data);
    EXPECT_NE(msg.find(bad == 0 ? "/rollout attribute noise_block: expected >= 1"
                                : "/rollout attribute noise_block 3: expected a divisor"),
              std::string::npos)
        << msg;
  }
}

TEST_F(FormatTest, NamesTheFileAndObjectOfEachDefect) {
  struct Case { const char* name; std::function<void(hid_t)> edit; const char* expect; };
  const std::vector<Case> cases = {
      {"format-name", [](hid_t f) { h5::set_attr(f, "treerpo_format", std::string("scores")); },
       "/ attribute treerpo_format is 'scores', expected 'trajectory'"},
      {"missing-dataset", [](hid_t f) { H5Ldelete(f, "/nodes/log_prob", H5P_DEFAULT); },
       "/nodes/log_prob: missing dataset"},
      {"missing-group", [](hid_t f) { H5Ldelete(f, "/leaves", H5P_DEFAULT); }, "/leaves: missing group"},
      {"wrong-dtype",
       [](hid_t f) {
         H5Ldelete(f, "/nodes/depth", H5P_DEFAULT);
         std::vector<double> v(27, 0.0);  // 3 prompts x 9 nodes
         h5::write_numeric(f, "/nodes/depth", h5::Type::f64, h5::Type::f64, {v.size()}, v.data(), {});
       },
       "/nodes/depth: expected int32, found float64"},
      {"wrong-shape",
       [](hid_t f) {
         H5Ldelete(f, "/nodes/noise_std", H5P_DEFAULT);
         std::vector<float> v(5, 0.0f);
         h5::write_numeric(f, "/nodes/noise_std", h5::Type::f32, h5::Type::f32, {5}, v.data(), {});
       },
       "/nodes/noise_std: expected shape ["},
      {"bad-parent",
       [](hid_t f) {
         std::vector<std::int64_t> p(27, 5);
         H5Ldelete(f, "/nodes/parent", H5P_DEFAULT);
         h5::write_numeric(f, "/nodes/parent", h5::Type::i64, h5::Type::i64, {27}, p.data(), {});
       },
       "/nodes/parent[0]: 5 is not -1 or an earlier node"},
  };
  for (const auto& c : cases) {
    ExitCode code{};
    const std::string file = path(std::string(c.name) + ".h5");
    const std::string msg = error_after(file, c.edit, &code);
    EXPECT_EQ(code, ExitCode::data) << c.name;
    EXPECT_EQ(msg.rfind(file + ": ", 0), 0u) << c.name << ": " << msg;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.name << ": " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << c.name;
  }
}

TEST_F(FormatTest, UnknownGroupsAreCopiedByStages) {
  test::write_file(path("x.h5"), test::full_trajectory(format::LatentDtype::float32));
  {
    h5::Handle f(H5Fopen(path("x.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    h5::Handle g = h5::create_group(f.get(), "x_lab_notes");
    std::vector<float> v{1, 2, 3};
    h5::write_numeric(g.get(), "values", h5::Type::f32, h5::Type::f32, {3}, v.data(), {});
  }
  auto in = h5::open_input(path("x.h5"));
  EXPECT_EQ(format::unknown_members(in.file.get()), std::vector<std::string>{"x_lab_notes"});
  {
    h5::OutputFile out(path("y.h5"), true, "test");
    format::write_trajectory(out.id(), format::read_trajectory(in.file.get(), "x.h5"));
    format::copy_unknown_members(in.file.get(), out.id());
    out.commit();
  }
  auto copy = h5::open_input(path("y.h5"));
  std::vector<float> v(3);
  h5::read_numeric(copy.file.get(), "/x_lab_notes/values", h5::Type::f32, v.data(), "values");
  EXPECT_EQ(v, (std::vector<float>{1, 2, 3}));
}
