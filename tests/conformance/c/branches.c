#include <math.h>

/* Branches: relu, abs, max, min and a clamp, on shifted inputs so both sides are taken. */
void branches(long n, const double *x, double *y) {
    for (long i = 0; i < n; i++) {
        double v = x[i] - 1.2;
        double relu = v > 0.0 ? v : 0.0;
        double ab = fabs(v);
        double mx = fmax(v, 0.3 * v * v);
        double mn = fmin(x[i], 1.5);
        double cl = v < -0.4 ? -0.4 : (v > 0.4 ? 0.4 : v);
        double r;
        if (x[i] > 1.0)
            r = relu * relu + ab;
        else
            r = 2.0 * ab - mx;
        y[i] = r + mn * cl;
    }
}
