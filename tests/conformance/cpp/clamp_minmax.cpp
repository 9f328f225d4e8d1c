#include <algorithm>
#include <cmath>

// Branches through the standard library: std::max, std::min, std::clamp, std::abs and a
// smooth-max (log-sum-exp with a temperature).
extern "C" void clamp_minmax(long n, const double *x, const double *y, double *out) {
    for (long i = 0; i < n; i++) {
        double a = x[i] - 1.1, b = y[i] - 1.3;
        double hi = std::max(a, b), lo = std::min(a, b);
        double c = std::clamp(a * b, -0.3, 0.3);
        double smax = 0.5 * std::log(std::exp(2.0 * a) + std::exp(2.0 * b));
        out[i] = hi * hi - lo + c + std::abs(a - 0.5 * b) + smax;
    }
}
