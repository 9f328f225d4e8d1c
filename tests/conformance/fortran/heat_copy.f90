! Whole-array copies (`u = u0`, `tmp = u`) and array sections in an explicit heat stepper:
! the kernel of shared/ENZYME.md that needs -enzyme-loose-types.
subroutine f_heat_copy(n, steps, kappa, u0, u) bind(C, name="f_heat_copy")
  use iso_c_binding
  implicit none
  integer(c_int64_t), value :: n, steps
  real(c_double), intent(in) :: kappa(n), u0(n)
  real(c_double), intent(out) :: u(n)
  real(c_double) :: tmp(n)
  integer(c_int64_t) :: t
  u = u0
  do t = 1, steps
    tmp = u
    u(2:n-1) = tmp(2:n-1) + 0.1d0 * kappa(2:n-1) * (tmp(3:n) - 2 * tmp(2:n-1) + tmp(1:n-2))
  end do
end subroutine
