#include <math.h>

/* A struct of arrays built inside the kernel from argument pointers, passed by pointer to a
 * helper: the energy of particles on a line with springs between neighbours. */
struct particles {
    const double *pos;
    const double *vel;
    const double *mass;
    long n;
};

static double kinetic(const struct particles *p) {
    double e = 0.0;
    for (long i = 0; i < p->n; i++) e += 0.5 * p->mass[i] * p->vel[i] * p->vel[i];
    return e;
}

static double potential(const struct particles *p, double k) {
    double e = 0.0;
    for (long i = 0; i + 1 < p->n; i++) {
        double d = p->pos[i + 1] - p->pos[i] - 1.0;
        e += 0.5 * k * d * d + 0.1 * sin(p->pos[i]);
    }
    return e;
}

void soa_particles(long n, double k, const double *pos, const double *vel, const double *mass, double *energy) {
    struct particles p = {pos, vel, mass, n};
    energy[0] = kinetic(&p);
    energy[1] = potential(&p, k);
}
