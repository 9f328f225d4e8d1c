#include <cmath>

// Layer normalisation in single precision: y = g (x - mean) / sqrt(var + eps) + b.
extern "C" void layernorm_f32(long n, const float *x, const float *g, const float *b, float *y) {
    float mean = 0.0f;
    for (long i = 0; i < n; i++) mean += x[i];
    mean /= static_cast<float>(n);
    float var = 0.0f;
    for (long i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= static_cast<float>(n);
    float inv = 1.0f / std::sqrt(var + 0.5f);
    for (long i = 0; i < n; i++) y[i] = g[i] * (x[i] - mean) * inv + b[i];
}
