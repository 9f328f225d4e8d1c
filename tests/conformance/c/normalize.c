#include <math.h>

/* A reduction whose result is used again: y = x / |x|, plus the norm itself. */
void normalize(long n, const double *x, double *y, double *norm) {
    double s = 0.0;
    for (long i = 0; i < n; i++) s += x[i] * x[i];
    double r = sqrt(s);
    for (long i = 0; i < n; i++) y[i] = x[i] / r;
    norm[0] = r;
}
