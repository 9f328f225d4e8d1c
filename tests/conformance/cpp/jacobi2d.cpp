#include <vector>

// A 2-D Jacobi relaxation on an n x n grid (row-major) with fixed boundary, a source term, and
// whole-grid copies through std::vector assignment.
extern "C" void jacobi2d(long n, long sweeps, const double *f, const double *u0, double *u) {
    std::vector<double> a(u0, u0 + n * n), b(n * n);
    for (long s = 0; s < sweeps; s++) {
        b = a;
        for (long i = 1; i + 1 < n; i++)
            for (long j = 1; j + 1 < n; j++)
                b[i * n + j] = 0.25 * (a[(i - 1) * n + j] + a[(i + 1) * n + j] + a[i * n + j - 1] +
                                      a[i * n + j + 1] - 0.1 * f[i * n + j] * a[i * n + j]);
        a = b;
    }
    for (long k = 0; k < n * n; k++) u[k] = a[k];
}
