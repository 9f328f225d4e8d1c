#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

// Standard algorithms with lambdas: transform, inner_product and accumulate over a vector.
extern "C" void lambda_accumulate(long n, const double *x, const double *w, double *out) {
    std::vector<double> t(x, x + n);
    std::transform(t.begin(), t.end(), t.begin(), [](double v) { return std::log(v) + v * v; });
    double dot = std::inner_product(t.begin(), t.end(), w, 0.0);
    double sq = std::accumulate(t.begin(), t.end(), 0.0, [](double acc, double v) { return acc + v * v; });
    out[0] = dot;
    out[1] = std::sqrt(sq);
}
