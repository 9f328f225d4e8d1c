! A Fortran kernel: k explicit steps of 1-D heat diffusion with fixed ends and a
! spatially varying coefficient, written with array assignments.
subroutine heat(n, steps, kappa, u0, u) bind(C, name="heat")
  use iso_c_binding, only: c_int64_t, c_double
  implicit none
  integer(c_int64_t), value :: n, steps
  real(c_double), intent(in) :: kappa(n), u0(n)
  real(c_double), intent(out) :: u(n)
  real(c_double) :: lap(n)
  integer(c_int64_t) :: s
  u = u0
  lap = 0.0_c_double
  do s = 1, steps
    lap(2:n-1) = u(1:n-2) - 2.0_c_double * u(2:n-1) + u(3:n)
    u(2:n-1) = u(2:n-1) + 0.2_c_double * kappa(2:n-1) * lap(2:n-1)
  end do
end subroutine heat
