#include <math.h>

/* libm: exp, log, tanh, pow, expm1, sqrt, sin, cos, log1p, atan, cbrt, hypot and fabs.
 * Inputs are in [0.5, 2). */
void libm_mix(long n, const double *x, const double *y, double *out) {
    for (long i = 0; i < n; i++) {
        double a = x[i], b = y[i];
        out[i] = exp(0.3 * a) + log(b) + tanh(a - b) + pow(a, b) + expm1(0.2 * b) + sqrt(a * b)
                 + sin(a) * cos(b) + log1p(a) + atan(b) + cbrt(a) + hypot(a, b);
    }
}
