! A column-major 2-D kernel: y = A x with A(m, n), written with explicit loops.
subroutine matvec(m, n, a, x, y) bind(C, name="matvec")
  use iso_c_binding, only: c_int64_t, c_double
  implicit none
  integer(c_int64_t), value :: m, n
  real(c_double), intent(in) :: a(m, n), x(n)
  real(c_double), intent(out) :: y(m)
  integer(c_int64_t) :: i, j
  do i = 1, m
    y(i) = 0.0_c_double
  end do
  do j = 1, n
    do i = 1, m
      y(i) = y(i) + a(i, j) * x(j)
    end do
  end do
end subroutine matvec
