/* An i64 index array used as bins, a non-differentiable f64 input array (weights marked
 * differentiable = false), and a loop whose trip count comes from data. */
void int64_bins(long n, const long *bin, const double *w, const double *x, double *h) {
    for (long i = 0; i < n; i++) h[i] = 0.0;
    for (long i = 0; i < n; i++) {
        long j = bin[i] < 0 ? 0 : (bin[i] >= n ? n - 1 : bin[i]);
        h[j] += w[i] * x[i] * x[i];
        h[i] += x[j] * 0.5;
    }
}
