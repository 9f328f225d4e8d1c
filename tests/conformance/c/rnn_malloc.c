#include <math.h>
#include <stdlib.h>

/* An RNN-like recurrence: h_{t+1} = tanh(W h_t + U x_t + b) over T steps, the hidden state on
 * the heap, all hidden states written out. h and x have the same width n here. */
void rnn_malloc(long t_steps, long n, const double *w, const double *u, const double *b,
                const double *x, const double *h0, double *hs) {
    double *h = (double *)malloc(sizeof(double) * (size_t)n);
    double *hn = (double *)malloc(sizeof(double) * (size_t)n);
    for (long i = 0; i < n; i++) h[i] = h0[i];
    for (long t = 0; t < t_steps; t++) {
        for (long i = 0; i < n; i++) {
            double a = 0.1 * b[i];
            for (long j = 0; j < n; j++) a += 0.15 * w[i * n + j] * h[j] - 0.1 * u[i * n + j] * x[t * n + j];
            hn[i] = tanh(a);
        }
        for (long i = 0; i < n; i++) {
            h[i] = hn[i];
            hs[t * n + i] = hn[i];
        }
    }
    free(h);
    free(hn);
}
