#include <math.h>

/* Sizes in expressions: z holds n complex numbers as 2*n interleaved values; p has n+1
 * prefix sums of |z_i|; d has n-1 neighbour differences. */
void pairs_expr(long n, const double *z, double *p, double *d) {
    p[0] = 0.0;
    for (long i = 0; i < n; i++) {
        double re = z[2 * i], im = z[2 * i + 1];
        p[i + 1] = p[i] + sqrt(re * re + im * im);
    }
    for (long i = 0; i + 1 < n; i++) d[i] = z[2 * i + 2] * z[2 * i + 1] - z[2 * i] * z[2 * i + 3];
}
