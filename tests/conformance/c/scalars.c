#include <math.h>

/* Scalars: differentiable (k), non-differentiable (dt), an integer scalar (reps),
 * and an i32 size. */
void scalars(int n, double k, double dt, int reps, const double *x, double *y) {
    for (int i = 0; i < n; i++) {
        double v = x[i];
        for (int r = 0; r < reps + 2; r++) v = v - dt * k * v * v + dt * sin(k * v);
        y[i] = v;
    }
}
