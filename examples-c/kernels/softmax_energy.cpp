// A C++ kernel: heap memory (std::vector), libm through <cmath>, and a reduction.
// energy = log(sum_i exp(w * x[i])) + 0.5 * sum_i x[i]^2, written to e[0].
#include <cmath>
#include <cstdint>
#include <vector>

extern "C" void softmax_energy(std::int64_t n, const double *x, double w, double *e) {
    std::vector<double> z(static_cast<std::size_t>(n));
    double m = w * x[0];
    for (std::int64_t i = 0; i < n; i++) {
        z[i] = w * x[i];
        if (z[i] > m) m = z[i];
    }
    double s = 0.0, q = 0.0;
    for (std::int64_t i = 0; i < n; i++) {
        s += std::exp(z[i] - m);
        q += x[i] * x[i];
    }
    e[0] = m + std::log(s) + 0.5 * q;
}
