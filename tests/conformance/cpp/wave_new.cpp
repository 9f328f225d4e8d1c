// new[] / delete[]: leapfrog for the 1-D wave equation u_tt = c^2 u_xx with fixed ends, three
// time levels on the heap, rotated by pointer swaps.
#include <utility>

extern "C" void wave_new(long n, long steps, double c, const double *u0, const double *v0, double *u) {
    double *prev = new double[n];
    double *cur = new double[n];
    double *next = new double[n];
    const double r = 0.3 * c * c;
    for (long i = 0; i < n; i++) {
        prev[i] = u0[i];
        cur[i] = u0[i] + 0.1 * v0[i];
    }
    for (long t = 0; t < steps; t++) {
        next[0] = 0.0;
        next[n - 1] = 0.0;
        for (long i = 1; i + 1 < n; i++)
            next[i] = 2.0 * cur[i] - prev[i] + 0.1 * r * (cur[i + 1] - 2.0 * cur[i] + cur[i - 1]);
        std::swap(prev, cur);
        std::swap(cur, next);
    }
    for (long i = 0; i < n; i++) u[i] = cur[i];
    delete[] prev;
    delete[] cur;
    delete[] next;
}
