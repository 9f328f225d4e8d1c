/* Integer index arrays: gather g_i = w_i x[idx_i], then scatter-add s[idx_i] += x_i w_i.
 * Indices are reduced into range, so any array (all zeros in particular) is valid. */
void gather_scatter(long n, const int *idx, const double *x, const double *w, double *g, double *s) {
    for (long i = 0; i < n; i++) s[i] = 0.0;
    for (long i = 0; i < n; i++) {
        long j = ((long)idx[i] % n + n) % n;
        g[i] = w[i] * x[j];
        s[j] += x[i] * w[i] * w[i];
    }
}
