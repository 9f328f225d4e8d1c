! A small matmul C = A B with explicit loops (column-major n x n), plus the trace of C.
subroutine f_matmul_loops(n, a, b, c, tr) bind(C, name="f_matmul_loops")
  use iso_c_binding
  implicit none
  integer(c_int64_t), value :: n
  real(c_double), intent(in) :: a(n, n), b(n, n)
  real(c_double), intent(out) :: c(n, n), tr(1)
  integer(c_int64_t) :: i, j, k
  do j = 1, n
    do i = 1, n
      c(i, j) = 0
      do k = 1, n
        c(i, j) = c(i, j) + a(i, k) * b(k, j)
      end do
    end do
  end do
  tr(1) = 0
  do i = 1, n
    tr(1) = tr(1) + c(i, i)
  end do
end subroutine
