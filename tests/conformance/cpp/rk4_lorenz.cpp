#include <array>

// RK4 for the Lorenz system with std::array states, parameters (sigma, rho, beta) as the first
// three entries of p, integrated from x0 for `steps` steps of size 0.01.
namespace {
using State = std::array<double, 3>;

State f(const State &s, const double *p) {
    return {p[0] * (s[1] - s[0]), s[0] * (p[1] - s[2]) - s[1], s[0] * s[1] - p[2] * s[2]};
}

State axpy(const State &x, double a, const State &k) { return {x[0] + a * k[0], x[1] + a * k[1], x[2] + a * k[2]}; }
}  // namespace

extern "C" void rk4_lorenz(long steps, const double *p, const double *x0, double *x) {
    State s{x0[0], x0[1], x0[2]};
    const double h = 0.01;
    for (long t = 0; t < steps; t++) {
        State k1 = f(s, p);
        State k2 = f(axpy(s, h / 2, k1), p);
        State k3 = f(axpy(s, h / 2, k2), p);
        State k4 = f(axpy(s, h, k3), p);
        for (int i = 0; i < 3; i++) s[i] += h / 6 * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i]);
    }
    for (int i = 0; i < 3; i++) x[i] = s[i];
}
