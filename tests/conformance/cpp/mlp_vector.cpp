#include <cmath>
#include <vector>

// std::vector: a two-layer perceptron y = W2 tanh(W1 x + b1) + b2 with n inputs, n hidden
// units and n outputs, the hidden layer in a std::vector.
extern "C" void mlp_vector(long n, const double *w1, const double *b1, const double *w2, const double *b2,
                           const double *x, double *y) {
    std::vector<double> h(n);
    for (long i = 0; i < n; i++) {
        double a = b1[i];
        for (long j = 0; j < n; j++) a += 0.2 * w1[i * n + j] * x[j];
        h[i] = std::tanh(a - 1.0);
    }
    for (long i = 0; i < n; i++) {
        double a = b2[i];
        for (long j = 0; j < n; j++) a += w2[i * n + j] * h[j];
        y[i] = a;
    }
}
