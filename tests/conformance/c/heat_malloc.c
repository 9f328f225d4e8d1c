#include <stdlib.h>
#include <string.h>

/* Explicit Euler for the 1-D heat equation u_t = (kappa u_x)_x with fixed ends, a scratch
 * buffer from malloc and a memcpy per step. */
void heat_malloc(long n, long steps, const double *kappa, const double *u0, double *u) {
    double *next = (double *)malloc(sizeof(double) * (size_t)n);
    memcpy(u, u0, sizeof(double) * (size_t)n);
    const double dt = 0.1;
    for (long t = 0; t < steps; t++) {
        next[0] = u[0];
        next[n - 1] = u[n - 1];
        for (long i = 1; i + 1 < n; i++) {
            double kl = 0.5 * (kappa[i - 1] + kappa[i]);
            double kr = 0.5 * (kappa[i] + kappa[i + 1]);
            next[i] = u[i] + dt * (kr * (u[i + 1] - u[i]) - kl * (u[i] - u[i - 1]));
        }
        memcpy(u, next, sizeof(double) * (size_t)n);
    }
    free(next);
}
