// Not extern "C": the symbol is mangled, which simgrad must report clearly.
void g(const double *x, double *y) { y[0] = x[0] * x[0]; }
