#include <stdint.h>

/* 2-D row-major input with its shape in the prototype (a variably modified parameter):
 * s[i] = sum_j a[i][j]^2 * w[j]. */
void rowsum(int64_t m, int64_t n, const double a[m][n], const double w[n], double s[m]) {
    for (int64_t i = 0; i < m; i++) {
        double acc = 0.0;
        for (int64_t j = 0; j < n; j++) {
            acc += a[i][j] * a[i][j] * w[j];
        }
        s[i] = acc;
    }
}
