/* In-place update: y <- a x + b y (a differentiable, b not). */
void axpy_inout(long n, double a, double b, const double *x, double *y) {
    for (long i = 0; i < n; i++) y[i] = a * x[i] + b * y[i] * y[i];
}
