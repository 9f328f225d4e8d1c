#include <string.h>

/* Known failure: the C twin of ../fortran_scatter_memset. The output s is zeroed with memset
 * and then scatter-added through an index array. Enzyme cannot deduce the memset's type
 * ("Cannot deduce type of memset"), so the default pipeline refuses it; with
 * -enzyme-loose-types (pipeline O2-loose) it builds and the VJP silently drops the scatter's
 * contribution. The corpus version (../../c/gather_scatter.c) zeroes s in a loop. */
void c_scatter_memset(long n, const int *idx, const double *x, const double *w, double *g, double *s) {
    memset(s, 0, sizeof(double) * (size_t)n);
    for (long i = 0; i < n; i++) {
        long j = ((long)idx[i] % n + n) % n;
        g[i] = w[i] * x[j];
        s[j] += x[i] * w[i] * w[i];
    }
}
