#include <math.h>

/* f32: softplus and a logistic gate in single precision. */
void softplus_f32(long n, const float *x, const float *b, float *y) {
    for (long i = 0; i < n; i++) {
        float z = x[i] - b[i];
        y[i] = log1pf(expf(z)) + 1.0f / (1.0f + expf(-2.0f * z)) + sqrtf(x[i]);
    }
}
