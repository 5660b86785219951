// paired_stats.cpp -- Student-t tails via the regularised incomplete beta function.
#include "evaluation/paired_stats.hpp"

#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>

namespace treerpo::evaluation {
namespace {
// Continued fraction of the incomplete beta function (modified Lentz).
double beta_fraction(double a, double b, double x) {
  constexpr double tiny = 1e-300;
  double c = 1, d = 1 - (a + b) * x / (a + 1);
  if (std::fabs(d) < tiny) d = tiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= 300; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    c = 1 + aa / c;
    if (std::fabs(d) < tiny) d = tiny;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    c = 1 + aa / c;
    if (std::fabs(d) < tiny) d = tiny;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    const double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1) < 1e-15) break;
  }
  return h;
}

// Regularised incomplete beta I_x(a, b).
double incomplete_beta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const double front =
      std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x));
  if (x < (a + 1) / (a + b + 2)) return front * beta_fraction(a, b, x) / a;
  return 1 - front * beta_fraction(b, a, 1 - x) / b;
}
}  // namespace

double student_t_two_sided_p(double t, double df) {
  if (!(df > 0)) throw std::invalid_argument("degrees of freedom must be > 0");
  if (std::isinf(t)) return 0;
  return incomplete_beta(df / 2, 0.5, df / (df + t * t));
}

double student_t_quantile(double confidence, double df) {
  if (!(confidence > 0 && confidence < 1)) throw std::invalid_argument("confidence must lie in (0, 1)");
  const double tail = 1 - confidence;
  double lo = 0, hi = 1;
  while (student_t_two_sided_p(hi, df) > tail) hi *= 2;
  for (int i = 0; i < 200 && hi - lo > 1e-12 * hi; ++i) {
    const double mid = 0.5 * (lo + hi);
    (student_t_two_sided_p(mid, df) > tail ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

PairedComparison paired_compare(const std::vector<double>& a, const std::vector<double>& b,
                                const std::vector<std::size_t>& prompt, double confidence) {
  if (a.size() != b.size() || a.size() != prompt.size())
    throw std::invalid_argument("paired_compare: a, b and prompt must have the same length");
  struct Sums { double a = 0, b = 0; std::size_t n = 0; };
  std::map<std::size_t, Sums> per_prompt;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto& s = per_prompt[prompt[i]];
    s.a += a[i];
    s.b += b[i];
    ++s.n;
  }
  PairedComparison r;
  r.pairs = a.size();
  r.prompts = per_prompt.size();
  if (r.prompts == 0) return r;
  std::vector<double> d;
  for (const auto& [p, s] : per_prompt) {
    const double ma = s.a / static_cast<double>(s.n), mb = s.b / static_cast<double>(s.n);
    r.mean_a += ma;
    r.mean_b += mb;
    d.push_back(mb - ma);
    (mb > ma ? r.better : mb < ma ? r.worse : r.equal) += 1;
  }
  const auto n = static_cast<double>(d.size());
  r.mean_a /= n;
  r.mean_b /= n;
  for (double x : d) r.difference += x;
  r.difference /= n;
  r.ci_low = r.ci_high = r.difference;
  if (d.size() < 2) return r;
  double ss = 0;
  for (double x : d) ss += (x - r.difference) * (x - r.difference);
  r.std_error = std::sqrt(ss / (n - 1) / n);
  if (r.std_error == 0) {
    r.p_value = r.difference == 0 ? 1 : 0;
    return r;
  }
  const double q = student_t_quantile(confidence, n - 1);
  r.ci_low = r.difference - q * r.std_error;
  r.ci_high = r.difference + q * r.std_error;
  r.p_value = student_t_two_sided_p(r.difference / r.std_error, n - 1);
  return r;
}

}  // namespace treerpo::evaluation
