// tokenizer.hpp -- the word-level tokenizer of the built-in model: lowercase words, a fixed
// vocabulary stored in the checkpoint, reserved ids for padding, the null prompt and unknown words.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace treerpo::model {

class Tokenizer {
 public:
  static constexpr std::int64_t kPad = 0, kNull = 1, kUnknown = 2;

  /// `words` are the vocabulary after the three reserved tokens (which it must not contain).
  explicit Tokenizer(std::vector<std::string> words);
  /// The vocabulary of the built-in "shapes" prompt grammar.
  static std::vector<std::string> default_words();

  /// Lowercases, splits on anything that is not a letter or digit, maps to ids; unknown words
  /// map to kUnknown. Truncates to `max_tokens`. Sets *unknown to the number of unknown words.
  std::vector<std::int64_t> encode(const std::string& text, std::size_t max_tokens,
                                   std::size_t* unknown = nullptr) const;
  /// Every entry including "<pad>", "<null>", "<unk>", in id order (what checkpoints store).
  const std::vector<std::string>& vocabulary() const { return vocabulary_; }
  std::size_t size() const { return vocabulary_.size(); }

 private:
  std::vector<std::string> vocabulary_;
  std::unordered_map<std::string, std::int64_t> ids_;
};

}  // namespace treerpo::model
