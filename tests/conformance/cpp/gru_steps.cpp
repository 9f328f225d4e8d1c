#include <cmath>
#include <vector>

// A GRU-like cell applied over T steps to an inout hidden state of width n, with per-unit gate
// weights (diagonal recurrences) and the inputs of each step.
namespace {
inline double sig(double v) { return 1.0 / (1.0 + std::exp(-v)); }
}

extern "C" void gru_steps(long t_steps, long n, const double *wz, const double *wr, const double *wh,
                          const double *x, double *h) {
    std::vector<double> z(n), r(n), cand(n);
    for (long t = 0; t < t_steps; t++) {
        const double *xt = x + t * n;
        for (long i = 0; i < n; i++) {
            z[i] = sig(wz[i] * xt[i] - h[i]);
            r[i] = sig(wr[i] * h[i] - 0.5 * xt[i]);
            cand[i] = std::tanh(wh[i] * (r[i] * h[i]) + 0.3 * xt[i] - 1.0);
        }
        for (long i = 0; i < n; i++) h[i] = (1.0 - z[i]) * h[i] + z[i] * cand[i];
    }
}
