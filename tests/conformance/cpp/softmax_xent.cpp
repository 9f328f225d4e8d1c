#include <cmath>
#include <vector>

// Softmax cross-entropy for a batch of m rows of k logits, with i32 labels (clamped into
// range) and a numerically stable log-sum-exp using the row maximum.
extern "C" void softmax_xent(long m, long k, const double *logits, const int *labels, double *loss) {
    double total = 0.0;
    std::vector<double> z(k);
    for (long r = 0; r < m; r++) {
        double mx = logits[r * k];
        for (long j = 1; j < k; j++) mx = logits[r * k + j] > mx ? logits[r * k + j] : mx;
        double s = 0.0;
        for (long j = 0; j < k; j++) {
            z[j] = logits[r * k + j] - mx;
            s += std::exp(z[j]);
        }
        long y = labels[r] < 0 ? 0 : (labels[r] >= k ? k - 1 : labels[r]);
        total += std::log(s) - z[y];
    }
    loss[0] = total / m;
}
