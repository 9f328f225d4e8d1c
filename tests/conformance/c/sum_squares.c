/* A plain loop: e = sum_i x_i^2 / 2 + sum_i x_i. */
void sum_squares(long n, const double *x, double *e) {
    double s = 0.0;
    for (long i = 0; i < n; i++) s += 0.5 * x[i] * x[i] + x[i];
    e[0] = s;
}
