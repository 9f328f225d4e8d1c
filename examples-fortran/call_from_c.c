/*
 * The Fortran advection-diffusion kernel (examples-fortran/diffusion) called from C through
 * simgrad.h: the same library the Fortran program and Python use.
 *
 *   call_from_c LIB                       check primal, JVP and VJP on a small problem
 *   call_from_c LIB --bench N STEPS [REPS] time primal, JVP and VJP on N points over STEPS
 *                                          steps and report peak memory (resident set)
 *
 * The kernel is Fortran, so its arrays are column-major: u0 and u have shape (n, nb) with
 * strides (1, n) in elements, which must be passed explicitly (NULL strides mean row-major).
 * Exit status 0 on success, 1 when a check fails or a call returns an error.
 */
/* clock_gettime and getrusage are POSIX. */
#define _POSIX_C_SOURCE 200809L

#include <simgrad.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

enum { NARGS = 9, ARG_VEL = 5, ARG_KAPPA = 6, ARG_U0 = 7, ARG_U = 8 };

/* Stops the program with simgrad's message when a call fails. */
static void ok(simgrad_status st, const char *what) {
    if (st != SIMGRAD_OK) {
        fprintf(stderr, "call_from_c: %s failed: %s: %s\n", what, simgrad_status_name(st),
                simgrad_last_error_message());
        exit(1);
    }
}

static simgrad_tensor scalar_f64(double *v) {
    simgrad_tensor t = {0};
    t.data = v;
    t.device.device_type = SIMGRAD_DEVICE_CPU;
    t.dtype.code = SIMGRAD_DTYPE_CODE_FLOAT;
    t.dtype.bits = 64;
    t.dtype.lanes = 1;
    return t;
}

static simgrad_tensor scalar_i64(int64_t *v) {
    simgrad_tensor t = scalar_f64(NULL);
    t.data = v;
    t.dtype.code = SIMGRAD_DTYPE_CODE_INT;
    return t;
}

/* A column-major f64 array; `shape` and `strides` must outlive the call. */
static simgrad_tensor array_f64(double *data, int32_t ndim, int64_t *shape, int64_t *strides) {
    simgrad_tensor t = scalar_f64(data);
    t.ndim = ndim;
    t.shape = shape;
    t.strides = strides;
    return t;
}

/* One problem: inputs, outputs, and the descriptors pointing at them. */
typedef struct {
    int64_t n, nb, steps;
    double dt, dx, vel;
    double *kappa, *u0, *u;
    int64_t shape1[1], shape2[2], strides1[1], strides2[2];
    simgrad_tensor args[NARGS];
} problem;

static double hash(int64_t i, int stream) {
    double t = sin((double)i * 12.9898 + stream * 78.233) * 43758.5453;
    return t - floor(t);
}

static void problem_init(problem *p, int64_t n, int64_t nb, int64_t steps) {
    p->n = n;
    p->nb = nb;
    p->steps = steps;
    p->dx = 1.0 / (double)(n - 1);
    p->vel = 0.4;
    p->kappa = malloc(sizeof(double) * (size_t)n);
    p->u0 = malloc(sizeof(double) * (size_t)(n * nb));
    p->u = malloc(sizeof(double) * (size_t)(n * nb));
    if (!p->kappa || !p->u0 || !p->u) {
        fprintf(stderr, "call_from_c: out of memory\n");
        exit(1);
    }
    double kmax = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = (double)i * p->dx;
        p->kappa[i] = 0.5 + 0.3 * sin(6.0 * x);
        kmax = fmax(kmax, p->kappa[i]);
        for (int64_t b = 0; b < nb; b++) /* column-major: u0(i, b) is u0[i + b*n] */
            p->u0[i + b * n] = sin(3.141592653589793 * (double)(b + 1) * x) + 0.1 * hash(i, 10 + (int)b);
    }
    p->dt = 0.9 / (2.0 * kmax / (p->dx * p->dx) + p->vel / p->dx);
    p->shape1[0] = n;
    p->strides1[0] = 1;
    p->shape2[0] = n;
    p->shape2[1] = nb;
    p->strides2[0] = 1;
    p->strides2[1] = n;
    p->args[0] = scalar_i64(&p->n);
    p->args[1] = scalar_i64(&p->nb);
    p->args[2] = scalar_i64(&p->steps);
    p->args[3] = scalar_f64(&p->dt);
    p->args[4] = scalar_f64(&p->dx);
    p->args[5] = scalar_f64(&p->vel);
    p->args[ARG_KAPPA] = array_f64(p->kappa, 1, p->shape1, p->strides1);
    p->args[ARG_U0] = array_f64(p->u0, 2, p->shape2, p->strides2);
    p->args[ARG_U] = array_f64(p->u, 2, p->shape2, p->strides2);
}

static void problem_free(problem *p) {
    free(p->kappa);
    free(p->u0);
    free(p->u);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* Linux: kilobytes */
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int failures = 0;

static void check(const char *what, double err, double tol) {
    int pass = err <= tol;
    printf("%-6s %-52s %.2e (tolerance %.0e)\n", pass ? "ok" : "FAILED", what, err, tol);
    if (!pass)
        failures++;
}

/* Small problem: JVP against central differences, VJP against JVP (dot-product test). */
static int run_checks(const simgrad_kernel *k) {
    problem p;
    problem_init(&p, 64, 2, 80);
    size_t nn = (size_t)(p.n * p.nb);
    double *dkappa = calloc((size_t)p.n, sizeof(double)), *du0 = calloc(nn, sizeof(double));
    double *du = calloc(nn, sizeof(double)), *w = calloc(nn, sizeof(double));
    double *gkappa = calloc((size_t)p.n, sizeof(double)), *gu0 = calloc(nn, sizeof(double));
    double *up = calloc(nn, sizeof(double)), *um = calloc(nn, sizeof(double));
    double *kappa0 = malloc(sizeof(double) * (size_t)p.n), *u00 = malloc(sizeof(double) * nn);
    double dvel = 0.7, gvel = 0;
    for (int64_t i = 0; i < p.n; i++)
        dkappa[i] = hash(i, 1) - 0.5;
    for (size_t i = 0; i < nn; i++) {
        du0[i] = hash((int64_t)i, 2) - 0.5;
        w[i] = hash((int64_t)i, 3) - 0.5;
    }

    ok(simgrad_kernel_call(k, p.args, NARGS), "primal");

    /* JVP: tangents for vel, kappa, u0 in; the tangent of u out. Absent entries are zeroed. */
    simgrad_tensor tin[NARGS] = {{0}}, tout[NARGS] = {{0}};
    tin[ARG_VEL] = scalar_f64(&dvel);
    tin[ARG_KAPPA] = array_f64(dkappa, 1, p.shape1, p.strides1);
    tin[ARG_U0] = array_f64(du0, 2, p.shape2, p.strides2);
    tout[ARG_U] = array_f64(du, 2, p.shape2, p.strides2);
    ok(simgrad_kernel_jvp(k, p.args, NARGS, tin, tout), "jvp");

    /* Central differences of the primal along (dkappa, du0, dvel). */
    const double h = 1e-6;
    memcpy(kappa0, p.kappa, sizeof(double) * (size_t)p.n);
    memcpy(u00, p.u0, sizeof(double) * nn);
    double vel0 = p.vel;
    for (int sign = 1; sign >= -1; sign -= 2) {
        for (int64_t i = 0; i < p.n; i++)
            p.kappa[i] = kappa0[i] + sign * h * dkappa[i];
        for (size_t i = 0; i < nn; i++)
            p.u0[i] = u00[i] + sign * h * du0[i];
        p.vel = vel0 + sign * h * dvel;
        p.args[ARG_U].data = sign > 0 ? up : um;
        ok(simgrad_kernel_call(k, p.args, NARGS), "primal (finite differences)");
    }
    memcpy(p.kappa, kappa0, sizeof(double) * (size_t)p.n);
    memcpy(p.u0, u00, sizeof(double) * nn);
    p.vel = vel0;
    p.args[ARG_U].data = p.u;
    double err = 0, scale = 0;
    for (size_t i = 0; i < nn; i++) {
        double fd = (up[i] - um[i]) / (2 * h);
        err = fmax(err, fabs(du[i] - fd));
        scale = fmax(scale, fabs(fd));
    }
    check("jvp vs central differences (max rel. error)", err / scale, 1e-6);

    /* VJP: the cotangent of u in; cotangents of vel, kappa, u0 out. */
    simgrad_tensor cin[NARGS] = {{0}}, cout[NARGS] = {{0}};
    cin[ARG_U] = array_f64(w, 2, p.shape2, p.strides2);
    cout[ARG_VEL] = scalar_f64(&gvel);
    cout[ARG_KAPPA] = array_f64(gkappa, 1, p.shape1, p.strides1);
    cout[ARG_U0] = array_f64(gu0, 2, p.shape2, p.strides2);
    ok(simgrad_kernel_vjp(k, p.args, NARGS, cin, cout, 0), "vjp");
    double lhs = 0, rhs = gvel * dvel;
    for (size_t i = 0; i < nn; i++)
        lhs += w[i] * du[i], rhs += gu0[i] * du0[i];
    for (int64_t i = 0; i < p.n; i++)
        rhs += gkappa[i] * dkappa[i];
    check("vjp vs jvp: <w, J v> = <J^T w, v>", fabs(lhs - rhs) / fmax(fabs(lhs), fabs(rhs)), 1e-10);

    /* Row-major strides (NULL) are refused for a Fortran kernel's rank-2 arrays. */
    p.args[ARG_U0].strides = NULL;
    simgrad_status st = simgrad_kernel_call(k, p.args, NARGS);
    printf("%-6s %-52s %s\n", st == SIMGRAD_ERR_LAYOUT ? "ok" : "FAILED",
           "row-major u0 refused", simgrad_status_name(st));
    if (st != SIMGRAD_ERR_LAYOUT)
        failures++;

    free(dkappa), free(du0), free(du), free(w), free(gkappa), free(gu0), free(up), free(um);
    free(kappa0), free(u00);
    problem_free(&p);
    return failures == 0;
}

/* Times each mode `reps` times on one state of n points over `steps` steps. */
static int run_bench(const simgrad_kernel *k, int64_t n, int64_t steps, int reps) {
    problem p;
    problem_init(&p, n, 1, steps);
    double *du = calloc((size_t)n, sizeof(double)), *dk = calloc((size_t)n, sizeof(double));
    double *w = malloc(sizeof(double) * (size_t)n), *gk = calloc((size_t)n, sizeof(double));
    double *gu0 = calloc((size_t)n, sizeof(double));
    double *t = malloc(sizeof(double) * (size_t)reps);
    double dvel = 0, gvel = 0;
    for (int64_t i = 0; i < n; i++)
        w[i] = hash(i, 3) - 0.5, dk[i] = 1.0;
    double rss_start = peak_rss_mib();

    for (int r = 0; r < reps; r++) {
        double t0 = now();
        ok(simgrad_kernel_call(k, p.args, NARGS), "primal");
        t[r] = now() - t0;
    }
    double t_primal = median(t, reps), rss_primal = peak_rss_mib();

    simgrad_tensor tin[NARGS] = {{0}}, tout[NARGS] = {{0}};
    tin[ARG_VEL] = scalar_f64(&dvel);
    tin[ARG_KAPPA] = array_f64(dk, 1, p.shape1, p.strides1);
    tout[ARG_U] = array_f64(du, 2, p.shape2, p.strides2);
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        ok(simgrad_kernel_jvp(k, p.args, NARGS, tin, tout), "jvp");
        t[r] = now() - t0;
    }
    double t_jvp = median(t, reps), rss_jvp = peak_rss_mib();

    simgrad_tensor cin[NARGS] = {{0}}, cout[NARGS] = {{0}};
    cin[ARG_U] = array_f64(w, 2, p.shape2, p.strides2);
    cout[ARG_VEL] = scalar_f64(&gvel);
    cout[ARG_KAPPA] = array_f64(gk, 1, p.shape1, p.strides1);
    cout[ARG_U0] = array_f64(gu0, 2, p.shape2, p.strides2);
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        ok(simgrad_kernel_vjp(k, p.args, NARGS, cin, cout, 0), "vjp");
        t[r] = now() - t0;
    }
    double t_vjp = median(t, reps), rss_vjp = peak_rss_mib();

    double state_mib = (double)n * (double)steps * 8.0 / (1024.0 * 1024.0);
    printf("bench: n = %lld points, %lld steps, median of %d calls\n", (long long)n,
           (long long)steps, reps);
    printf("  primal  %9.3f ms\n", 1e3 * t_primal);
    printf("  jvp     %9.3f ms   jvp/primal = %.2f\n", 1e3 * t_jvp, t_jvp / t_primal);
    printf("  vjp     %9.3f ms   vjp/primal = %.2f\n", 1e3 * t_vjp, t_vjp / t_primal);
    printf("  peak RSS: %.1f MiB before, %.1f after primal, %.1f after jvp, %.1f after vjp\n",
           rss_start, rss_primal, rss_jvp, rss_vjp);
    printf("  vjp extra peak memory %.1f MiB = %.2f x the %.1f MiB of all n*steps states\n",
           rss_vjp - rss_jvp, (rss_vjp - rss_jvp) / state_mib, state_mib);
    double norm = 0;
    for (int64_t i = 0; i < n; i++)
        norm += gk[i] * gk[i];
    printf("  with a random cotangent w: <w, du/dvel> = %.6e, |d<w,u>/dkappa| = %.6e\n", gvel, sqrt(norm));
    free(du), free(dk), free(w), free(gk), free(gu0), free(t);
    problem_free(&p);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 2 && !(argc >= 5 && argc <= 6 && strcmp(argv[2], "--bench") == 0)) {
        fprintf(stderr, "usage: %s LIB\n       %s LIB --bench N STEPS [REPS]\n", argv[0], argv[0]);
        return 2;
    }
    if (simgrad_abi_version() != SIMGRAD_ABI_VERSION) {
        fprintf(stderr, "call_from_c: compiled for C ABI %d, running against %u\n",
                SIMGRAD_ABI_VERSION, simgrad_abi_version());
        return 1;
    }
    simgrad_library *lib = NULL;
    simgrad_kernel *k = NULL;
    ok(simgrad_library_open(argv[1], &lib), "opening the library");
    ok(simgrad_library_kernel(lib, "advdiff", &k), "looking up advdiff");
    uint32_t order = 0;
    ok(simgrad_kernel_memory_order(k, &order), "memory order");
    if (order != SIMGRAD_ORDER_F) {
        fprintf(stderr, "call_from_c: expected a column-major (Fortran) kernel\n");
        return 1;
    }
    printf("libsimgrad %s: kernel advdiff from %s (Fortran, column-major)\n", simgrad_version(),
           argv[1]);
    int passed;
    if (argc == 2) {
        passed = run_checks(k);
    } else {
        int reps = argc == 6 ? atoi(argv[5]) : 5;
        passed = run_bench(k, atoll(argv[3]), atoll(argv[4]), reps > 0 ? reps : 1);
    }
    simgrad_kernel_free(k);
    simgrad_library_free(lib);
    printf("call_from_c: %s\n", passed ? "passed" : "FAILED");
    return passed ? 0 : 1;
}
