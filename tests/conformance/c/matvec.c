/* Nested loops: y = A x for a row-major m x n matrix. */
void matvec(long m, long n, const double *a, const double *x, double *y) {
    for (long i = 0; i < m; i++) {
        double acc = 0.0;
        for (long j = 0; j < n; j++) acc += a[i * n + j] * x[j];
        y[i] = acc;
    }
}
