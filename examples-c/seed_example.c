/* The classic first Enzyme example, done through simgrad's C ABI.
 *
 *   out[i] = x[i] - prev / x[i],  prev = (int)x[i-1]   (100 doubles)
 *
 * The program builds the example spec (or reuses the cache), loads the library, and calls the
 * primal, the forward mode (JVP) and the reverse mode (VJP) of `seed`, printing the gradient
 * next to the analytic derivative d out[i] / d x[i] = 1 + prev / x[i]^2 (the Jacobian is
 * diagonal because the truncation to int has derivative zero). It also calls `axpy`, whose
 * size n is bound at call time. Exit status 0 only when every value matches.
 *
 * Usage: seed_example SPEC
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simgrad.h"

#define N 100

static int failures = 0;

static void check_status(simgrad_status s, const char *what) {
    if (s != SIMGRAD_OK) {
        fprintf(stderr, "%s failed: %s: %s\n", what, simgrad_status_name(s), simgrad_last_error_message());
        exit(2);
    }
}

static void expect_close(const char *what, int i, double got, double want) {
    double err = fabs(got - want) / fmax(1.0, fabs(want));
    if (err > 1e-12) {
        fprintf(stderr, "MISMATCH %s[%d]: got %.17g, want %.17g\n", what, i, got, want);
        failures++;
    }
}

/* A row-major f64 array descriptor. */
static simgrad_tensor f64_array(double *data, int64_t *shape, int32_t ndim) {
    simgrad_tensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.device.device_type = SIMGRAD_DEVICE_CPU;
    t.ndim = ndim;
    t.dtype.code = SIMGRAD_DTYPE_CODE_FLOAT;
    t.dtype.bits = 64;
    t.dtype.lanes = 1;
    t.shape = shape;
    return t;
}

static simgrad_tensor scalar(void *value, uint8_t code) {
    simgrad_tensor t = f64_array(value, NULL, 0);
    t.dtype.code = code;
    return t;
}

static simgrad_tensor absent(void) {
    simgrad_tensor t;
    memset(&t, 0, sizeof t);
    return t;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s SPEC\n", argv[0]);
        return 2;
    }
    printf("simgrad %s (C ABI %u)\n", simgrad_version(), simgrad_abi_version());

    simgrad_build_options opts;
    memset(&opts, 0, sizeof opts);
    opts.struct_size = sizeof opts;
    opts.flags = SIMGRAD_BUILD_QUIET;
    simgrad_library *lib = NULL;
    check_status(simgrad_build(argv[1], &opts, &lib), "simgrad_build");
    const char *path = NULL;
    check_status(simgrad_library_path(lib, &path), "simgrad_library_path");
    printf("library: %s\n", path);

    simgrad_kernel *seed = NULL;
    check_status(simgrad_library_kernel(lib, "seed", &seed), "simgrad_library_kernel(seed)");

    double x[N], out[N], v[N], dout[N], w[N], dx[N], analytic[N];
    int64_t shape[1] = {N};
    int prev = 0;
    for (int i = 0; i < N; i++) {
        x[i] = (double)((i + 1) * (i + 1)) / 7.0; /* not integers: prev changes along the way */
        analytic[i] = 1.0 + prev / (x[i] * x[i]);
        prev = (int)x[i];
        v[i] = 1.0;
        w[i] = 1.0;
    }

    /* Primal. */
    simgrad_tensor args[2] = {f64_array(x, shape, 1), f64_array(out, shape, 1)};
    check_status(simgrad_kernel_call(seed, args, 2), "primal");
    prev = 0;
    for (int i = 0; i < N; i++) {
        expect_close("out", i, out[i], x[i] - prev / x[i]);
        prev = (int)x[i];
    }

    /* Forward mode with v = 1: the tangent is the Jacobian's diagonal. */
    simgrad_tensor t_in[2] = {f64_array(v, shape, 1), absent()};
    simgrad_tensor t_out[2] = {absent(), f64_array(dout, shape, 1)};
    check_status(simgrad_kernel_jvp(seed, args, 2, t_in, t_out), "jvp");

    /* Reverse mode with w = 1: the cotangent is the same diagonal. w is left intact. */
    simgrad_tensor c_in[2] = {absent(), f64_array(w, shape, 1)};
    simgrad_tensor c_out[2] = {f64_array(dx, shape, 1), absent()};
    check_status(simgrad_kernel_vjp(seed, args, 2, c_in, c_out, 0), "vjp");

    printf("\n   i          x[i]      JVP (fwd)     VJP (rev)      analytic\n");
    for (int i = 0; i < N; i++) {
        expect_close("jvp", i, dout[i], analytic[i]);
        expect_close("vjp", i, dx[i], analytic[i]);
        expect_close("seed w untouched", i, w[i], 1.0);
        if (i < 6 || i >= N - 2) {
            printf("%4d %13.6f %13.10f %13.10f %13.10f\n", i, x[i], dout[i], dx[i], analytic[i]);
        } else if (i == 6) {
            printf(" ...\n");
        }
    }

    /* axpy: y <- a x + y with n bound at call time; d(sum y)/da = sum x. */
    simgrad_kernel *axpy = NULL;
    check_status(simgrad_library_kernel(lib, "axpy", &axpy), "simgrad_library_kernel(axpy)");
    int64_t n = 5, nshape[1] = {5};
    double a = 2.0, ax[5] = {1, 2, 3, 4, 5}, ay[5] = {10, 20, 30, 40, 50}, ybar[5] = {1, 1, 1, 1, 1};
    double abar = 0.0, xbar[5], yin_bar[5];
    simgrad_tensor aargs[4] = {scalar(&n, SIMGRAD_DTYPE_CODE_INT), scalar(&a, SIMGRAD_DTYPE_CODE_FLOAT),
                               f64_array(ax, nshape, 1), f64_array(ay, nshape, 1)};
    simgrad_tensor ac_in[4] = {absent(), absent(), absent(), f64_array(ybar, nshape, 1)};
    simgrad_tensor ac_out[4] = {absent(), scalar(&abar, SIMGRAD_DTYPE_CODE_FLOAT), f64_array(xbar, nshape, 1),
                                f64_array(yin_bar, nshape, 1)};
    check_status(simgrad_kernel_vjp(axpy, aargs, 4, ac_in, ac_out, 0), "axpy vjp");
    expect_close("abar", 0, abar, 15.0);
    for (int i = 0; i < 5; i++) {
        expect_close("xbar", i, xbar[i], 2.0);
        expect_close("ybar", i, yin_bar[i], 1.0);
        expect_close("y untouched by the VJP", i, ay[i], 10.0 * (i + 1));
    }
    check_status(simgrad_kernel_call(axpy, aargs, 4), "axpy primal");
    for (int i = 0; i < 5; i++) expect_close("y", i, ay[i], 2.0 * (i + 1) + 10.0 * (i + 1));
    printf("\naxpy (n = %lld bound at call time): d(sum y)/da = %.1f (sum x = 15)\n", (long long)n, abar);

    /* A wrong call is refused with a message that names the argument. */
    int64_t bad_shape[1] = {99};
    simgrad_tensor bad[2] = {f64_array(x, bad_shape, 1), f64_array(out, shape, 1)};
    simgrad_status s = simgrad_kernel_call(seed, bad, 2);
    printf("a 99-element x is refused: %s: %s\n", simgrad_status_name(s), simgrad_last_error_message());
    if (s != SIMGRAD_ERR_SHAPE) failures++;

    simgrad_kernel_free(axpy);
    simgrad_kernel_free(seed);
    simgrad_library_free(lib);
    printf("\n%s\n", failures == 0 ? "all values match the analytic derivative" : "MISMATCHES");
    return failures == 0 ? 0 : 1;
}
