/* Fixed shapes, no size arguments: a 4x3 matrix times a 3-vector plus a bias, then a
 * quadratic form of the result. */
void fixed_shape(const double *a, const double *x, const double *bias, double *y, double *q) {
    double s = 0.0;
    for (int i = 0; i < 4; i++) {
        double acc = bias[i];
        for (int j = 0; j < 3; j++) acc += a[i * 3 + j] * x[j];
        y[i] = acc;
        s += acc * acc;
    }
    q[0] = s;
}
