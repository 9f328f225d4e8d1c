/* The classic first Enzyme example: out[i] = x[i] - prev / x[i], where prev is x[i-1]
 * truncated to an int (0 for i = 0). The truncation makes d out[i] / d x[i-1] = 0, so the
 * Jacobian is diagonal: d out[i] / d x[i] = 1 + prev / x[i]^2. */
void seed(const double *x, double *out) {
    int prev = 0;
    for (int i = 0; i < 100; i++) {
        out[i] = x[i] - prev / x[i];
        prev = (int)x[i];
    }
}
