/* A loop-carried recurrence in place: x_i <- x_{i-1} * x_i + 0.1 (a running product). */
void cumprod_inout(long n, double *x) {
    for (long i = 1; i < n; i++) x[i] = x[i - 1] * x[i] * 0.8 + 0.1;
}
