#include <stdint.h>

/* The seed kernel with its length bound at call time, for call-overhead benchmarks. */
void seed_n(int64_t n, const double *x, double *out) {
    int prev = 0;
    for (int64_t i = 0; i < n; i++) {
        out[i] = x[i] - prev / x[i];
        prev = (int)x[i];
    }
}
