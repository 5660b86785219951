// paired_stats.hpp -- the paired comparison of two checkpoints sampled on the same seeds:
// differences averaged per prompt (samples of one prompt are not independent), then a
// Student-t confidence interval and a two-sided p-value over prompts. No torch.
#pragma once
#include <cstddef>
#include <vector>

namespace treerpo::evaluation {

/// Two-sided tail probability P(|T| >= |t|) of Student's t with `df` degrees of freedom.
double student_t_two_sided_p(double t, double df);
/// The quantile q with P(|T| <= q) = `confidence` (e.g. 0.95 -> 2.228 at df = 10).
double student_t_quantile(double confidence, double df);

struct PairedComparison {
  std::size_t prompts = 0;     ///< units of the test (prompts with at least one pair)
  std::size_t pairs = 0;       ///< (prompt, seed) pairs
  double mean_a = 0, mean_b = 0;
  double difference = 0;       ///< mean over prompts of (b - a)
  double std_error = 0;        ///< of the difference; 0 with fewer than two prompts
  double ci_low = 0, ci_high = 0;
  double p_value = 1;          ///< two-sided, H0: no difference
  std::size_t better = 0, worse = 0, equal = 0;  ///< prompts where b > a, b < a, b == a
};

/// Compares per-sample scores `a` and `b` (same length, same seeds) grouped by `prompt`
/// (the prompt index of each sample). \throws std::invalid_argument on mismatched lengths
PairedComparison paired_compare(const std::vector<double>& a, const std::vector<double>& b,
                                const std::vector<std::size_t>& prompt, double confidence = 0.95);

}  // namespace treerpo::evaluation
