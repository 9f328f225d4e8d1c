#include <stdint.h>

/* y <- a * x + y over n elements; n is bound at call time. */
void axpy(int64_t n, double a, const double *x, double *y) {
    for (int64_t i = 0; i < n; i++) {
        y[i] = a * x[i] + y[i];
    }
}
