// tokenizer.cpp -- word-level tokenizer.
#include "model/tokenizer.hpp"

#include <cctype>
#include <stdexcept>

namespace treerpo::model {

Tokenizer::Tokenizer(std::vector<std::string> words) {
  vocabulary_ = {"<pad>", "<null>", "<unk>"};
  for (auto& w : words) {
    if (w.empty() || w[0] == '<') throw std::invalid_argument("tokenizer: invalid vocabulary word '" + w + "'");
    vocabulary_.push_back(std::move(w));
  }
  for (std::size_t i = 0; i < vocabulary_.size(); ++i)
    if (!ids_.emplace(vocabulary_[i], static_cast<std::int64_t>(i)).second)
      throw std::invalid_argument("tokenizer: duplicate vocabulary word '" + vocabulary_[i] + "'");
}

std::vector<std::string> Tokenizer::default_words() {
  return {"a",      "an",     "the",     "one",      "two",     "three",  "four",   "and",    "of",
          "left",   "right",  "above",   "below",    "to",      "photo",  "image",  "red",    "green",
          "blue",   "yellow", "purple",  "orange",   "white",   "black",  "gray",   "circle", "circles",
          "square", "squares", "triangle", "triangles", "cross", "crosses", "ring",  "rings",  "small",
          "large",  "on",     "next",    "with",     "is"};
}

std::vector<std::int64_t> Tokenizer::encode(const std::string& text, std::size_t max_tokens,
                                            std::size_t* unknown) const {
  std::vector<std::int64_t> out;
  std::size_t misses = 0;
  std::string word;
  auto flush = [&] {
    if (word.empty()) return;
    auto it = ids_.find(word);
    if (it == ids_.end()) ++misses;
    if (out.size() < max_tokens) out.push_back(it == ids_.end() ? kUnknown : it->second);
    word.clear();
  };
  for (unsigned char ch : text) {
    if (std::isalnum(ch)) word += static_cast<char>(std::tolower(ch));
    else flush();
  }
  flush();
  if (unknown) *unknown = misses;
  return out;
}

}  // namespace treerpo::model
