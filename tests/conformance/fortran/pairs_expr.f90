! Sizes in expressions: z(2 * n) holds n complex numbers as (re, im) pairs (shape "2*n"),
! p has n + 1 prefix sums of |z_i|, and a non-differentiable scalar scales the result.
subroutine f_pairs_expr(n, scale, z, p) bind(C, name="f_pairs_expr")
  use iso_c_binding
  implicit none
  integer(c_int64_t), value :: n
  real(c_double), value :: scale
  real(c_double), intent(in) :: z(2 * n)
  real(c_double), intent(out) :: p(n + 1)
  integer(c_int64_t) :: i
  p(1) = 0
  do i = 1, n
    p(i + 1) = p(i) + scale * sqrt(z(2 * i - 1) ** 2 + z(2 * i) ** 2)
  end do
end subroutine
