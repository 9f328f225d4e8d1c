/* A small matmul C = A B (n x n, row-major), with a triple loop. */
void matmul(long n, const double *a, const double *b, double *c) {
    for (long i = 0; i < n; i++)
        for (long j = 0; j < n; j++) {
            double acc = 0.0;
            for (long k = 0; k < n; k++) acc += a[i * n + k] * b[k * n + j];
            c[i * n + j] = acc;
        }
}
