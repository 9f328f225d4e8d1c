#include <vector>

// i64 indices into a std::vector<long>; an embedding lookup followed by a weighted sum per row.
// Indices are clamped into range, so all-zero index arrays are valid.
extern "C" void gather_vector(long n, long d, const long *ids, const double *table, const double *w, double *out) {
    std::vector<long> rows(ids, ids + n);
    for (auto &r : rows) r = r < 0 ? 0 : (r >= n ? n - 1 : r);
    for (long i = 0; i < n; i++) {
        double s = 0.0;
        for (long k = 0; k < d; k++) s += table[rows[i] * d + k] * w[k] * table[i * d + k];
        out[i] = s;
    }
}
