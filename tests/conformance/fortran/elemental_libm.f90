! Array expressions with elemental intrinsics: exp, log, sqrt, sin, cos, tanh, ** and abs.
subroutine f_elemental_libm(n, x, y, out) bind(C, name="f_elemental_libm")
  use iso_c_binding
  implicit none
  integer(c_int64_t), value :: n
  real(c_double), intent(in) :: x(n), y(n)
  real(c_double), intent(out) :: out(n)
  out = exp(0.3d0 * x) + log(y) + sqrt(x * y) + sin(x) * cos(y) + tanh(x - y) + x ** y + abs(x - 1.2d0)
end subroutine
