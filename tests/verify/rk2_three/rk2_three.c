/* A three-species system integrated with the corpus's RK2 stepper (../../conformance/c/
 * rk2_logistic.c). Under a pipeline that runs LLVM's loop vectoriser before Enzyme (`O2`), the
 * reverse mode of rk2_logistic is silently wrong whenever n < 4: the vectorised loop bodies
 * (4 elements per iteration) never run and only their scalar remainders do. The JVP stays right,
 * the build gives no diagnostic; only the gradient check (`--verify`) notices. */
void rk2_logistic(long n, long steps, double c, double dt, const double *r, double *y);

void rk2_three(long steps, double c, double dt, const double *r, double *y) {
    rk2_logistic(3, steps, c, dt, r, y);
}
