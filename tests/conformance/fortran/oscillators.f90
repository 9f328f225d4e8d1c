! A recurrence over time steps: semi-implicit Euler for n coupled damped oscillators, positions
! and velocities in a local 2 x n array, damping and coupling as scalars.
subroutine f_oscillators(n, steps, k, damping, q0, q) bind(C, name="f_oscillators")
  use iso_c_binding
  implicit none
  integer(c_int64_t), value :: n, steps
  real(c_double), value :: damping
  real(c_double), intent(in) :: k(n), q0(n)
  real(c_double), intent(out) :: q(n)
  real(c_double) :: s(2, n), force
  real(c_double), parameter :: dt = 0.05d0
  integer(c_int64_t) :: t, i
  s(1, :) = q0
  s(2, :) = 0
  do t = 1, steps
    do i = 1, n
      force = -k(i) * s(1, i) - 0.1d0 * damping * s(2, i)
      if (i > 1) force = force + 0.2d0 * (s(1, i - 1) - s(1, i))
      if (i < n) force = force + 0.2d0 * (s(1, i + 1) - s(1, i))
      s(2, i) = s(2, i) + dt * force
    end do
    s(1, :) = s(1, :) + dt * s(2, :)
  end do
  q = s(1, :)
end subroutine
