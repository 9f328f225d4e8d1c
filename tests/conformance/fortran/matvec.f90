! Nested loops over a column-major m x n matrix: y = A x, then z = A^T y.
subroutine f_matvec(m, n, a, x, y, z) bind(C, name="f_matvec")
  use iso_c_binding
  implicit none
  integer(c_int64_t), value :: m, n
  real(c_double), intent(in) :: a(m, n), x(n)
  real(c_double), intent(out) :: y(m), z(n)
  integer(c_int64_t) :: i, j
  y = 0
  do j = 1, n
    do i = 1, m
      y(i) = y(i) + a(i, j) * x(j)
    end do
  end do
  do j = 1, n
    z(j) = 0
    do i = 1, m
      z(j) = z(j) + a(i, j) * y(i)
    end do
  end do
end subroutine
