// The LLTM cell (PyTorch's C++-extension tutorial) as a plain C++ kernel: no ATen, no libm calls
// in the hot loops, just loops over arrays. simgrad/Enzyme generate its JVP and VJP; the backward
// pass is never written by hand.
//
//   X           = [old_h, input]                    (B x (S+F), this concatenation order)
//   gates       = X W^T + bias                      (B x 3S; W is (3S) x (S+F), row-major)
//   input_gate  = sigmoid(gates[:, 0:S])
//   output_gate = sigmoid(gates[:, S:2S])
//   candidate   = elu(gates[:, 2S:3S])              (alpha = 1)
//   new_cell    = old_cell + candidate * input_gate
//   new_h       = tanh(new_cell) * output_gate
//
// Shapes (row-major): input[B,F], weights[3S,S+F], bias[3S], old_h[B,S], old_cell[B,S],
// new_h[B,S], new_cell[B,S]. One template, instantiated with C linkage for double (lltm_f64*) and
// float (lltm_f32*), each in three instruction-set variants (bottom of the file).
//
// How it is made fast (README.md has the measurements and what did not work):
//  * Two passes: the gates (B x 3S) go to a heap buffer, then the activations run as one
//    vectorisable loop.
//  * Blocking. X is never materialised. NB = 4 batch rows are processed together, and for each
//    state index s the three weight rows s, S+s, 2S+s are walked together, so every weight vector
//    loaded feeds 4 rows and every input vector 3 gates (12 independent accumulators). In the
//    reverse pass Enzyme derives from this, each weight-gradient vector is then updated once per
//    4 rows instead of once per row.
//  * Explicit vectors. The dot products use GCC/Clang vector types, so they vectorise without
//    -ffast-math (no reassociation is needed: each lane is its own partial sum), and Enzyme
//    differentiates the vector instructions directly.
//  * Inline exponentials. libm's expf/expm1f are opaque scalar calls (10-20 ns each; four per
//    output element made them the largest cost), so the activations use the branch-free
//    exp/expm1 below, which the loop vectoriser turns into vector code. They are accurate to about
//    1 ulp, and Enzyme differentiates them like any other arithmetic.
//  * `__restrict` on every pointer: the inputs are never written, so Enzyme may reload them in the
//    reverse pass instead of caching every value it read.
//  * Instruction sets: AVX2 + FMA entry points next to the portable ones.
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace {

// V<T, VB>: VB bytes of T as a GCC/Clang vector type. VB = 16 (SSE2, any x86-64) for the portable
// kernels, 32 for the AVX2 + FMA ones (see the bottom of the file).
template <typename T, int VB>
struct VecOf {
    typedef T type __attribute__((vector_size(VB)));
};

#define SG_INLINE inline __attribute__((always_inline))
// Every loop with a small constant trip count is unrolled on request. The pipelines that keep
// LLVM's unroller off before Enzyme (simgrad's default, O2-novec) would otherwise leave them as
// loops over small local arrays, which Enzyme then has to handle as memory: with such arrays it
// derived wrong gradients (see `lltm` below), and a loop over the lanes of a vector (an
// extractelement with a variable index) made its type analysis abort.
#define SG_UNROLL _Pragma("clang loop unroll(full)")

// Vectors cross between the helpers above by value; all of them are always inlined, so no call
// (and no calling convention) is left for clang's "AVX vector argument without AVX changes the
// ABI" warning to be about.
#pragma clang diagnostic ignored "-Wpsabi"

// Vec<T, N>: N lanes of T (N = 1 for loop remainders); IVec<T, N>: N lanes of int32.
template <typename T, int N>
using Vec = typename VecOf<T, N * static_cast<int>(sizeof(T))>::type;
template <typename T, int N>
using IVec = typename VecOf<std::int32_t, N * 4>::type;

// Unaligned vector load and store.
template <typename V, typename T>
SG_INLINE V load(const T *p) {
    V v;
    std::memcpy(&v, p, sizeof(V));
    return v;
}
template <typename V, typename T>
SG_INLINE void store(T *p, const V &v) {
    std::memcpy(p, &v, sizeof(V));
}

// ---------------------------------------------------------------------------------------------
// exp and expm1 of x <= 0 on N lanes at once: branch-free, accurate to about 1 ulp.
//
// x = n ln2 + r with n = round(x / ln2) and |r| <= ln2 / 2 (Cody-Waite: ln2 split in a high part
// exact in n * ln2_hi and a low correction). expm1(r) is a Taylor polynomial p(r) (truncation error
// below 2^-53 relative for double, 2^-24 for float), and with s = 2^n
//     expm1(x) = s p + (s - 1),        exp(x) = s p + s,
// both exact for n = 0 (x near 0), where expm1's accuracy matters. n is an integer computed by a
// float-to-int conversion, so it carries no derivative (Enzyme treats it as a constant): the
// derivative flows through r alone, as it should (d/dx 2^n e^r = 2^n e^r).
//
// The argument is clamped to >= kLow so that 2^n stays a normal number; exp(kLow) is below 1e-37
// (float) / 1e-307 (double), so the clamp changes results by less than that.
//
// Written with explicit vectors rather than left to LLVM's loop vectoriser: simgrad's default
// pipeline keeps the vectoriser off before Enzyme (vectorised loops are a known source of wrong
// reverse-mode derivatives), and the derivative code of a scalar loop is not vectorised well after.
template <typename T>
struct ExpConst;
template <>
struct ExpConst<float> {
    static constexpr float kLow = -87.0f;
    static constexpr float kInvLn2 = 1.44269504088896341f;
    static constexpr float kLn2Hi = 0.693145751953125f;  // 8 significant bits: n * hi is exact
    static constexpr float kLn2Lo = 1.42860682030941723e-6f;
    static constexpr int kBits = 7;  // -n <= 126
};
template <>
struct ExpConst<double> {
    static constexpr double kLow = -708.0;
    static constexpr double kInvLn2 = 1.4426950408889634074;
    static constexpr double kLn2Hi = 6.93147180369123816490e-01;  // fdlibm's split
    static constexpr double kLn2Lo = 1.90821492927058770002e-10;
    static constexpr int kBits = 10;  // -n <= 1021
};

// p(r) = expm1(r) for |r| <= ln2/2: sum_{k=1..K} r^k / k!, Horner form (K = 7 float, 13 double).
template <typename T, int N>
SG_INLINE Vec<T, N> expm1_poly(Vec<T, N> r) {
    Vec<T, N> p;
    if constexpr (sizeof(T) == 4) {
        p = Vec<T, N>{} + T(1.0 / 5040);
    } else {
        p = Vec<T, N>{} + T(1.0 / 6227020800.0);  // 1/13!
        p = p * r + T(1.0 / 479001600.0);         // 1/12!
        p = p * r + T(1.0 / 39916800.0);
        p = p * r + T(1.0 / 3628800.0);
        p = p * r + T(1.0 / 362880.0);
        p = p * r + T(1.0 / 40320.0);
        p = p * r + T(1.0 / 5040.0);
    }
    p = p * r + T(1.0 / 720);
    p = p * r + T(1.0 / 120);
    p = p * r + T(1.0 / 24);
    p = p * r + T(1.0 / 6);
    p = p * r + T(0.5);
    p = p * r + T(1);
    return p * r;
}

// 2^-m for 0 <= m < 2^kBits, by its binary digits: a product of selected powers of two (exact).
// Built from floating-point multiplications only: constructing the exponent bits directly (an
// integer shifted and reinterpreted as a float) is what libm does, but Enzyme's type analysis
// rejects a value that is both an integer and a float ("Illegal updateAnalysis").
template <typename T, int N>
SG_INLINE Vec<T, N> pow2_neg(IVec<T, N> m) {
    Vec<T, N> s = Vec<T, N>{} + T(1);
    T f = T(0.5);
    SG_UNROLL
    for (int i = 0; i < ExpConst<T>::kBits; i++) {
        const Vec<T, N> bit = __builtin_convertvector((m >> i) & 1, Vec<T, N>);
        s = bit > T(0.5) ? s * f : s;
        f *= f;
    }
    return s;
}

// For x <= 0: s = 2^n and p = expm1(x - n ln2), so that exp(x) = s p + s, expm1(x) = s p + s - 1.
template <typename T, int N>
SG_INLINE void exp_parts(Vec<T, N> x, Vec<T, N> &s, Vec<T, N> &p) {
    using C = ExpConst<T>;
    x = x < C::kLow ? Vec<T, N>{} + C::kLow : x;
    // round(x / ln2) for x <= 0: truncation of (x / ln2 - 1/2) toward zero.
    const IVec<T, N> n = __builtin_convertvector(x * C::kInvLn2 - T(0.5), IVec<T, N>);
    const Vec<T, N> nf = __builtin_convertvector(n, Vec<T, N>);
    const Vec<T, N> r = (x - nf * C::kLn2Hi) - nf * C::kLn2Lo;
    s = pow2_neg<T, N>(-n);
    p = expm1_poly<T, N>(r);
}

template <typename T, int N>
SG_INLINE Vec<T, N> exp_nonpos(Vec<T, N> x) {
    Vec<T, N> s, p;
    exp_parts<T, N>(x, s, p);
    return s * p + s;
}

template <typename T, int N>
SG_INLINE Vec<T, N> expm1_nonpos(Vec<T, N> x) {
    Vec<T, N> s, p;
    exp_parts<T, N>(x, s, p);
    return s * p + (s - T(1));
}

template <typename T, int N>
SG_INLINE Vec<T, N> abs_(Vec<T, N> x) {
    return x < T(0) ? -x : x;
}

// ---------------------------------------------------------------------------------------------
// Activations. Every exponential has a non-positive argument, so neither the functions nor any
// derivative Enzyme derives from them can overflow. This matters: Enzyme differentiates both arms
// of a `select`, and it marks derivative arithmetic fast-math. The textbook forms fail:
//   * 1 / (1 + exp(-z)) overflows exp for z < -88 (float); the reverse pass computes
//     exp(-z) * 0 = inf * 0 = NaN;
//   * z > 0 ? z : expm1(z) evaluates expm1 (and its derivative exp) also for large positive z,
//     giving inf * 0 = NaN in the reverse pass;
//   * std::tanh's derivative rule in Enzyme is 1 / cosh(c)^2, which overflows for |c| > 44.9 in
//     float; under the fast-math flags that became NaN, not 0 (found by `simgrad check`).

// sigmoid(z) = 1 / (1 + e^-z), through e = exp(-|z|) <= 1.
template <typename T, int N>
SG_INLINE Vec<T, N> sigmoid(Vec<T, N> z) {
    const Vec<T, N> e = exp_nonpos<T, N>(-abs_<T, N>(z));
    const Vec<T, N> q = T(1) / (T(1) + e);
    return z >= T(0) ? q : e * q;
}

// ELU with alpha = 1: z for z > 0, exp(z) - 1 otherwise (expm1 of the clamped argument).
template <typename T, int N>
SG_INLINE Vec<T, N> elu(Vec<T, N> z) {
    const Vec<T, N> m = expm1_nonpos<T, N>(z < T(0) ? z : Vec<T, N>{});
    return z > T(0) ? z : m;
}

// tanh(c) = sign(c) (1 - e) / (1 + e) with e = exp(-2|c|), and 1 - e = -expm1(-2|c|) (accurate
// near 0).
template <typename T, int N>
SG_INLINE Vec<T, N> tanh_(Vec<T, N> c) {
    const Vec<T, N> em = expm1_nonpos<T, N>(T(-2) * abs_<T, N>(c));  // e - 1, in (-1, 0]
    const Vec<T, N> t = -em / (T(2) + em);
    return c >= T(0) ? t : -t;
}

// The cell update of N consecutive state indices of one batch row.
template <typename T, int N>
SG_INLINE void cell(const T *gi, const T *go, const T *gc, const T *old_cell, T *new_cell,
                    T *new_h) {
    const Vec<T, N> c = load<Vec<T, N>>(old_cell) +
                        elu<T, N>(load<Vec<T, N>>(gc)) * sigmoid<T, N>(load<Vec<T, N>>(gi));
    store(new_cell, c);
    store(new_h, tanh_<T, N>(c) * sigmoid<T, N>(load<Vec<T, N>>(go)));
}

// ---------------------------------------------------------------------------------------------
// The sum of a vector's lanes: halve with shufflevector down to 4 lanes, then add those. (Indexing
// a 16-lane vector directly made Enzyme's type analysis abort: TypeTree::CanonicalizeInPlace in
// visitExtractElementInst.)
template <typename T, int VB>
SG_INLINE T hsum(typename VecOf<T, VB>::type v) {
    constexpr int L = VB / static_cast<int>(sizeof(T));
    if constexpr (L == 16) {
        const typename VecOf<T, VB / 2>::type lo =
            __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7);
        const typename VecOf<T, VB / 2>::type hi =
            __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
        const typename VecOf<T, VB / 2>::type sum = lo + hi;
        return hsum<T, VB / 2>(sum);
    } else if constexpr (L == 8) {
        const typename VecOf<T, VB / 2>::type lo = __builtin_shufflevector(v, v, 0, 1, 2, 3);
        const typename VecOf<T, VB / 2>::type hi = __builtin_shufflevector(v, v, 4, 5, 6, 7);
        const typename VecOf<T, VB / 2>::type sum = lo + hi;
        return hsum<T, VB / 2>(sum);
    } else {
        T s = T(0);
        SG_UNROLL
        for (int l = 0; l < L; l++) s += v[l];
        return s;
    }
}

// Gates of NB batch rows for one state index s: for g in {input, output, candidate},
// gates[(b0 + r) * 3S + g S + s] = bias[g S + s] + <W[g S + s, :], [old_h[b0 + r], input[b0 + r]]>.
// The 3 NB dot products share their loads and keep 3 NB vector accumulators.
template <typename T, int VB, int NB>
SG_INLINE void gates_block(std::int64_t b0, std::int64_t s, std::int64_t F, std::int64_t S,
                           const T *__restrict input, const T *__restrict weights,
                           const T *__restrict bias, const T *__restrict old_h,
                           T *__restrict gates) {
    typedef typename VecOf<T, VB>::type V;
    constexpr int L = VB / static_cast<int>(sizeof(T));
    const std::int64_t K = S + F;
    const T *w0 = weights + s * K;            // input-gate row
    const T *w1 = weights + (S + s) * K;      // output-gate row
    const T *w2 = weights + (2 * S + s) * K;  // candidate row
    V a0[NB], a1[NB], a2[NB];
    T t0[NB], t1[NB], t2[NB];
    SG_UNROLL
    for (int r = 0; r < NB; r++) {
        a0[r] = a1[r] = a2[r] = V{};
        t0[r] = t1[r] = t2[r] = T(0);
    }
    // X = [old_h, input]: columns 0..S-1 of W multiply old_h, columns S..S+F-1 multiply input.
    SG_UNROLL
    for (int part = 0; part < 2; part++) {
        const std::int64_t n = part == 0 ? S : F;
        const std::int64_t off = part == 0 ? 0 : S;
        const T *v = part == 0 ? old_h + b0 * S : input + b0 * F;
        std::int64_t k = 0;
        for (; k + L <= n; k += L) {
            const V x0 = load<V>(w0 + off + k), x1 = load<V>(w1 + off + k),
                    x2 = load<V>(w2 + off + k);
            SG_UNROLL
            for (int r = 0; r < NB; r++) {
                const V x = load<V>(v + r * n + k);
                a0[r] += x0 * x;
                a1[r] += x1 * x;
                a2[r] += x2 * x;
            }
        }
        for (; k < n; k++) {
            SG_UNROLL
            for (int r = 0; r < NB; r++) {
                const T x = v[r * n + k];
                t0[r] += w0[off + k] * x;
                t1[r] += w1[off + k] * x;
                t2[r] += w2[off + k] * x;
            }
        }
    }
    SG_UNROLL
    for (int r = 0; r < NB; r++) {
        const T s0 = t0[r] + bias[s] + hsum<T, VB>(a0[r]);
        const T s1 = t1[r] + bias[S + s] + hsum<T, VB>(a1[r]);
        const T s2 = t2[r] + bias[2 * S + s] + hsum<T, VB>(a2[r]);
        T *g = gates + (b0 + r) * 3 * S + s;
        g[0] = s0;
        g[S] = s1;
        g[2 * S] = s2;
    }
}

// The kernel, in two passes over a heap buffer of gates (B x 3S): the blocked matrix product,
// then the activations as one vectorisable loop. Every gate has its own slot, written once. Two
// variants that kept gates in small stack arrays reused across loop iterations (a 4 x 32 tile; the
// 3 x NB gates of one state index) were faster to write but Enzyme derived wrong gradients from
// them: errors of order 1, no diagnostic, a correct primal (tests/ caught it; `simgrad check` did
// not, see README.md).
template <typename T, int VB>
SG_INLINE void lltm(std::int64_t B, std::int64_t F, std::int64_t S, const T *__restrict input,
                    const T *__restrict weights, const T *__restrict bias,
                    const T *__restrict old_h, const T *__restrict old_cell, T *__restrict new_h,
                    T *__restrict new_cell) {
    constexpr int NB = 4;
    T *gates = static_cast<T *>(std::malloc(sizeof(T) * static_cast<std::size_t>(B * 3 * S)));
    std::int64_t b = 0;
    for (; b + NB <= B; b += NB)
        for (std::int64_t s = 0; s < S; s++)
            gates_block<T, VB, NB>(b, s, F, S, input, weights, bias, old_h, gates);
    for (; b < B; b++)
        for (std::int64_t s = 0; s < S; s++)
            gates_block<T, VB, 1>(b, s, F, S, input, weights, bias, old_h, gates);
    constexpr int L = VB / static_cast<int>(sizeof(T));
    for (std::int64_t i = 0; i < B; i++) {
        const T *gi = gates + i * 3 * S, *go = gi + S, *gc = gi + 2 * S;
        const std::int64_t o = i * S;
        std::int64_t s = 0;
        for (; s + L <= S; s += L)
            cell<T, L>(gi + s, go + s, gc + s, old_cell + o + s, new_cell + o + s, new_h + o + s);
        for (; s < S; s++)
            cell<T, 1>(gi + s, go + s, gc + s, old_cell + o + s, new_cell + o + s, new_h + o + s);
    }
    std::free(gates);
}

}  // namespace

// The C entry points: float64 and float32, each portable (x86-64 baseline, 16-byte vectors) and,
// on x86-64, for CPUs with AVX2 + FMA (32-byte vectors, fused multiply-add). The latter are
// compiled for those instructions through a target attribute whatever the build's -m flags, so
// the library loads everywhere and callers pick at run time (`__builtin_cpu_supports`; the
// extensions' `variant="auto"`). Whole-file -march=native is no alternative: the library would
// not run on an older CPU sharing the cache, and with it Enzyme aborted on this kernel (see hsum
// above). AVX-512 entry points (64-byte vectors) were measured too: 20% faster than AVX2 under the
// O2 pipeline, no faster under simgrad's default O2-novec, so they are not built.
#define LLTM_ENTRY(NAME, T, VB, ATTR)                                                           \
    extern "C" ATTR void NAME(std::int64_t B, std::int64_t F, std::int64_t S,                   \
                              const T *__restrict input, const T *__restrict weights,           \
                              const T *__restrict bias, const T *__restrict old_h,              \
                              const T *__restrict old_cell, T *__restrict new_h,                \
                              T *__restrict new_cell) {                                         \
        lltm<T, VB>(B, F, S, input, weights, bias, old_h, old_cell, new_h, new_cell);           \
    }

LLTM_ENTRY(lltm_f64, double, 16, )
LLTM_ENTRY(lltm_f32, float, 16, )
#if defined(__x86_64__)
#define LLTM_AVX2 __attribute__((target("avx2,fma")))
LLTM_ENTRY(lltm_f64_avx2, double, 32, LLTM_AVX2)
LLTM_ENTRY(lltm_f32_avx2, float, 32, LLTM_AVX2)
#endif
