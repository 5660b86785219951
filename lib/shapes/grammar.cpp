// grammar.cpp -- generating and parsing shapes prompts.
#include "shapes/grammar.hpp"

#include <algorithm>
#include <cctype>
#include <map>

#include "core/digest.hpp"

namespace treerpo::shapes {
namespace {
const char* kShapeNames[] = {"circle", "square", "triangle", "cross"};
const char* kShapePlurals[] = {"circles", "squares", "triangles", "crosses"};
const char* kColorNames[] = {"red", "green", "blue", "yellow", "purple"};
const char* kRelationNames[] = {"left of", "right of", "above", "below"};
const char* kNumbers[] = {"zero", "one", "two", "three", "four"};

std::vector<std::string> words_of(const std::string& text) {
  std::vector<std::string> words;
  std::string w;
  for (unsigned char c : text) {
    if (std::isalpha(c)) w += static_cast<char>(std::tolower(c));
    else if (!w.empty()) { words.push_back(w); w.clear(); }
  }
  if (!w.empty()) words.push_back(w);
  return words;
}

std::string object_phrase(const ObjectSpec& o) {
  std::string s = "a ";
  if (o.color) s += std::string(kColorNames[static_cast<int>(*o.color)]) + " ";
  return s + kShapeNames[static_cast<int>(o.shape)];
}

// Parses "a [colour] shape" at words[i...]; advances i.
std::optional<ObjectSpec> parse_object(const std::vector<std::string>& w, std::size_t& i) {
  if (i >= w.size() || (w[i] != "a" && w[i] != "an")) return std::nullopt;
  ++i;
  ObjectSpec o;
  for (int c = 0; c < kColors && i < w.size(); ++c)
    if (w[i] == kColorNames[c]) { o.color = static_cast<Color>(c); ++i; break; }
  if (i >= w.size()) return std::nullopt;
  for (int s = 0; s < kShapes; ++s)
    if (w[i] == kShapeNames[s]) { o.shape = static_cast<Shape>(s); ++i; return o; }
  return std::nullopt;
}
}  // namespace

const char* shape_name(Shape s) { return kShapeNames[static_cast<int>(s)]; }
const char* shape_plural(Shape s) { return kShapePlurals[static_cast<int>(s)]; }
const char* color_name(Color c) { return kColorNames[static_cast<int>(c)]; }
const char* relation_name(Relation r) { return kRelationNames[static_cast<int>(r)]; }

const std::vector<std::string>& task_kind_names() {
  static const std::vector<std::string> names{"single_object", "two_objects", "counting",
                                              "colors",        "position",    "color_attr"};
  return names;
}
const char* task_kind_name(TaskKind k) { return task_kind_names()[static_cast<std::size_t>(k)].c_str(); }

std::string prompt_text(const PromptSpec& p) {
  switch (p.kind) {
    case TaskKind::single_object:
    case TaskKind::colors: return object_phrase(p.objects.at(0));
    case TaskKind::two_objects:
    case TaskKind::color_attr: return object_phrase(p.objects.at(0)) + " and " + object_phrase(p.objects.at(1));
    case TaskKind::counting: {
      const Shape s = p.objects.at(0).shape;
      return std::string(kNumbers[p.count]) + " " + (p.count == 1 ? shape_name(s) : shape_plural(s));
    }
    case TaskKind::position:
      return object_phrase(p.objects.at(0)) + " " + relation_name(*p.relation) + " " + object_phrase(p.objects.at(1));
  }
  return "";
}

std::optional<PromptSpec> parse_prompt(const std::string& text) {
  const auto w = words_of(text);
  if (w.empty()) return std::nullopt;
  PromptSpec p;
  // Counting: "<number> <shape|shapes>".
  for (int n = 1; n <= 4; ++n) {
    if (w[0] != kNumbers[n] || w.size() != 2) continue;
    for (int s = 0; s < kShapes; ++s)
      if (w[1] == (n == 1 ? kShapeNames[s] : kShapePlurals[s])) {
        p.kind = TaskKind::counting;
        p.count = n;
        p.objects = {ObjectSpec{static_cast<Shape>(s), std::nullopt}};
        return p;
      }
    return std::nullopt;
  }
  std::size_t i = 0;
  auto first = parse_object(w, i);
  if (!first) return std::nullopt;
  p.objects.push_back(*first);
  if (i == w.size()) {
    p.kind = first->color ? TaskKind::colors : TaskKind::single_object;
    return p;
  }
  if (w[i] == "and") {
    ++i;
    auto second = parse_object(w, i);
    if (!second || i != w.size() || first->color.has_value() != second->color.has_value()) return std::nullopt;
    p.objects.push_back(*second);
    p.kind = first->color ? TaskKind::color_attr : TaskKind::two_objects;
    return p;
  }
  // Position: "left of" / "right of" / "above" / "below".
  std::optional<Relation> rel;
  if (w[i] == "left" || w[i] == "right") {
    if (i + 1 >= w.size() || w[i + 1] != "of") return std::nullopt;
    rel = w[i] == "left" ? Relation::left_of : Relation::right_of;
    i += 2;
  } else if (w[i] == "above" || w[i] == "below") {
    rel = w[i] == "above" ? Relation::above : Relation::below;
    i += 1;
  } else {
    return std::nullopt;
  }
  auto second = parse_object(w, i);
  if (!second || i != w.size()) return std::nullopt;
  p.objects.push_back(*second);
  p.kind = TaskKind::position;
  p.relation = rel;
  return p;
}

std::vector<PromptSpec> all_prompts() {
  std::vector<PromptSpec> out;
  auto shape = [](int s) { return static_cast<Shape>(s); };
  auto color = [](int c) { return static_cast<Color>(c); };
  for (int s = 0; s < kShapes; ++s)
    out.push_back({TaskKind::single_object, {{shape(s), std::nullopt}}, 1, std::nullopt});
  for (int a = 0; a < kShapes; ++a)
    for (int b = 0; b < kShapes; ++b)
      if (a != b)
        out.push_back({TaskKind::two_objects, {{shape(a), std::nullopt}, {shape(b), std::nullopt}}, 1, std::nullopt});
  for (int s = 0; s < kShapes; ++s)
    for (int n = 1; n <= 4; ++n) out.push_back({TaskKind::counting, {{shape(s), std::nullopt}}, n, std::nullopt});
  for (int c = 0; c < kColors; ++c)
    for (int s = 0; s < kShapes; ++s) out.push_back({TaskKind::colors, {{shape(s), color(c)}}, 1, std::nullopt});
  for (int a = 0; a < kShapes; ++a)
    for (int b = 0; b < kShapes; ++b)
      for (int r = 0; r < kRelations; ++r)
        if (a != b)
          out.push_back({TaskKind::position, {{shape(a), std::nullopt}, {shape(b), std::nullopt}}, 1,
                         static_cast<Relation>(r)});
  for (int c1 = 0; c1 < kColors; ++c1)
    for (int s1 = 0; s1 < kShapes; ++s1)
      for (int c2 = 0; c2 < kColors; ++c2)
        for (int s2 = 0; s2 < kShapes; ++s2)
          if (s1 != s2 && c1 != c2)
            out.push_back({TaskKind::color_attr, {{shape(s1), color(c1)}, {shape(s2), color(c2)}}, 1, std::nullopt});
  return out;
}

bool is_held_out(const PromptSpec& spec) {
  // Rank the prompts of each kind by a hash of their text; the lowest ~20% are held out.
  static const std::map<std::string, bool> held = [] {
    std::map<std::string, bool> m;
    std::map<int, std::vector<std::pair<std::string, std::string>>> by_kind;
    for (const auto& p : all_prompts()) {
      const auto text = prompt_text(p);
      by_kind[static_cast<int>(p.kind)].emplace_back(sha256_of(text.data(), text.size()), text);
    }
    for (auto& [kind, list] : by_kind) {
      std::sort(list.begin(), list.end());
      const std::size_t n = std::max<std::size_t>(1, list.size() / 5);
      for (std::size_t i = 0; i < list.size(); ++i) m[list[i].second] = i < n;
    }
    return m;
  }();
  auto it = held.find(prompt_text(spec));
  return it != held.end() && it->second;
}

}  // namespace treerpo::shapes
