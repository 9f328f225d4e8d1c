! In-place update with a whole-array expression and a differentiable scalar by value.
subroutine f_axpy_inout(n, a, x, y) bind(C, name="f_axpy_inout")
  use iso_c_binding
  implicit none
  integer(c_int64_t), value :: n
  real(c_double), value :: a
  real(c_double), intent(in) :: x(n)
  real(c_double), intent(inout) :: y(n)
  y = a * x + y * y
end subroutine
