// The seed material's `lltm.Enzyme("test.cpp", "f").apply(a)` with a of shape (1, 4), float32:
// out[0] = sum_j sin(x[0][j]) * x[0][j].
#include <cmath>

extern "C" void f(const float x[1][4], float out[1]) {
    float acc = 0.0f;
    for (int j = 0; j < 4; j++) {
        acc += std::sin(x[0][j]) * x[0][j];
    }
    out[0] = acc;
}
