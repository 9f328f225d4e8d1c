/* A small local array: a fixed 5-point window is copied into a stack buffer, smoothed and
 * reduced. x has a fixed length of 16. */
void local_stencil(const double *x, double *y) {
    for (int i = 0; i < 12; i++) {
        double w[5];
        for (int k = 0; k < 5; k++) w[k] = x[i + k];
        double s[5];
        s[0] = w[0];
        for (int k = 1; k < 5; k++) s[k] = 0.5 * (s[k - 1] + w[k] * w[k]);
        y[i] = s[4] - w[2];
    }
}
