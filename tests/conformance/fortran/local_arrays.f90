! Local arrays: an automatic array sized by n and a fixed-size one, filled with array syntax and
! reduced with sum and dot_product.
subroutine f_local_arrays(n, x, w, out) bind(C, name="f_local_arrays")
  use iso_c_binding
  implicit none
  integer(c_int64_t), value :: n
  real(c_double), intent(in) :: x(n), w(n)
  real(c_double), intent(out) :: out(2)
  real(c_double) :: sq(n), fixed(4)
  integer :: i
  sq = x * x - w
  do i = 1, 4
    fixed(i) = x(1 + mod(i - 1, int(n))) * i
  end do
  out(1) = sum(sq) + sum(fixed * fixed)
  out(2) = dot_product(sq, w)
end subroutine
