#include <cmath>

// The LSTM objective of a public AD benchmark (ADBench's `lstm_objective`), written the same
// way: heap arrays from new[], the state updated in place layer by layer, a log-sum-exp loss
// over the predicted sequence. l layers, b hidden width, c predictions from a sequence of c + 1
// vectors (ADBench passes the sequence length; here c >= 1 for every c, so no 0/0 loss).
namespace {

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

double logsumexp(const double *v, long n) {
    double s = 0.0;
    for (long i = 0; i < n; i++) s += std::exp(v[i]);
    s += 2.0;
    return std::log(s);
}

void lstm_model(long h, const double *weight, const double *bias, double *hidden, double *cell,
                const double *input) {
    double *gates = new double[4 * h];
    double *forget = gates, *ingate = gates + h, *outgate = gates + 2 * h, *change = gates + 3 * h;
    for (long i = 0; i < h; i++) {
        forget[i] = sigmoid(input[i] * weight[i] + bias[i]);
        ingate[i] = sigmoid(hidden[i] * weight[h + i] + bias[h + i]);
        outgate[i] = sigmoid(input[i] * weight[2 * h + i] + bias[2 * h + i]);
        change[i] = std::tanh(hidden[i] * weight[3 * h + i] + bias[3 * h + i]);
    }
    for (long i = 0; i < h; i++) cell[i] = cell[i] * forget[i] + ingate[i] * change[i];
    for (long i = 0; i < h; i++) hidden[i] = outgate[i] * std::tanh(cell[i]);
    delete[] gates;
}

void lstm_predict(long l, long b, const double *w, const double *w2, double *s, const double *x,
                  double *x2) {
    for (long i = 0; i < b; i++) x2[i] = x[i] * w2[i];
    const double *xp = x2;
    for (long i = 0; i <= 2 * l * b - 1; i += 2 * b) {
        lstm_model(b, &w[i * 4], &w[(i + b) * 4], &s[i], &s[i + b], xp);
        xp = &s[i];
    }
    for (long i = 0; i < b; i++) x2[i] = xp[i] * w2[b + i] + w2[2 * b + i];
}

}  // namespace

extern "C" void lstm_objective(long l, long c, long b, const double *main_params,
                               const double *extra_params, double *state, const double *sequence,
                               double *loss) {
    double total = 0.0;
    long count = 0;
    const double *input = &sequence[0];
    double *ypred = new double[b];
    double *ynorm = new double[b];
    for (long t = 0; t <= c * b - 1; t += b) {
        lstm_predict(l, b, main_params, extra_params, state, input, ypred);
        double lse = logsumexp(ypred, b);
        for (long i = 0; i < b; i++) ynorm[i] = ypred[i] - lse;
        const double *ygold = &sequence[t + b];
        for (long i = 0; i < b; i++) total += ygold[i] * ynorm[i];
        count += b;
        input = ygold;
    }
    *loss = -total / count;
    delete[] ypred;
    delete[] ynorm;
}
