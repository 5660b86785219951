// grammar.hpp -- the prompt grammar of the built-in "shapes" world, in the spirit of GenEval's
// task kinds: single object, two objects, counting, colours, relative position, colour
// attribution. Prompts are generated from and parsed back into a Scene specification.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace treerpo::shapes {

enum class Shape : std::uint8_t { circle, square, triangle, cross };
enum class Color : std::uint8_t { red, green, blue, yellow, purple };
enum class Relation : std::uint8_t { left_of, right_of, above, below };
enum class TaskKind : std::uint8_t { single_object, two_objects, counting, colors, position, color_attr };

inline constexpr int kShapes = 4, kColors = 5, kRelations = 4, kTaskKinds = 6;

const char* shape_name(Shape s);            ///< "circle"
const char* shape_plural(Shape s);          ///< "circles"
const char* color_name(Color c);            ///< "red"
const char* relation_name(Relation r);      ///< "left of"
const char* task_kind_name(TaskKind k);     ///< "single_object"
const std::vector<std::string>& task_kind_names();

/// One object a prompt asks for: a shape, optionally a colour.
struct ObjectSpec {
  Shape shape = Shape::circle;
  std::optional<Color> color;
};

/// What a prompt asks for. `count` applies to counting prompts (one object spec, 1..4 copies);
/// `relation` to position prompts (objects[0] relation objects[1]).
struct PromptSpec {
  TaskKind kind = TaskKind::single_object;
  std::vector<ObjectSpec> objects;
  int count = 1;
  std::optional<Relation> relation;
};

/// The prompt text of a spec, e.g. "a red circle and a blue square", "three triangles".
std::string prompt_text(const PromptSpec& spec);

/// Parses a prompt of the grammar (case and surrounding punctuation ignored).
/// Returns nullopt for text outside the grammar.
std::optional<PromptSpec> parse_prompt(const std::string& text);

/// Every prompt of the grammar, in a fixed order.
std::vector<PromptSpec> all_prompts();

/// Train / held-out split of all_prompts(): per task kind, a fixed ~20% (at least one prompt)
/// is held out, chosen by a hash of the prompt text - the same on every machine and run.
bool is_held_out(const PromptSpec& spec);

}  // namespace treerpo::shapes
