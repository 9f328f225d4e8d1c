#include <cmath>

// A class holding a struct of arrays built from the argument pointers, with member functions:
// the pair potential energy sum_{i<j} (q_i q_j / r_ij + 0.1 r_ij^2) of particles in the plane.
namespace {
class Particles {
  public:
    Particles(long n, const double *x, const double *y, const double *q) : n_(n), x_(x), y_(y), q_(q) {}
    double distance(long i, long j) const {
        double dx = x_[i] - x_[j] + 3.0 * (i - j);
        double dy = y_[i] - y_[j];
        return std::sqrt(dx * dx + dy * dy);
    }
    double energy() const {
        double e = 0.0;
        for (long i = 0; i < n_; i++)
            for (long j = i + 1; j < n_; j++) {
                double r = distance(i, j);
                e += q_[i] * q_[j] / r + 0.1 * std::pow(r, 2.0);
            }
        return e;
    }

  private:
    long n_;
    const double *x_, *y_, *q_;
};
}  // namespace

extern "C" void particles_class(long n, const double *x, const double *y, const double *q, double *e) {
    Particles p(n, x, y, q);
    e[0] = p.energy();
}
