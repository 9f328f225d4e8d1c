! Known failure: an index clamped into range with integer min/max. flang lowers them to
! llvm.smin / llvm.smax, and Enzyme stops: "cannot handle (forward) unknown intrinsic llvm.smin".
! The corpus version (../../fortran/gather.f90) wraps the index with modulo instead.
subroutine f_int_minmax(n, idx, x, w, g) bind(C, name="f_int_minmax")
  use iso_c_binding
  implicit none
  integer(c_int64_t), value :: n
  integer(c_int32_t), intent(in) :: idx(n)
  real(c_double), intent(in) :: x(n), w(n)
  real(c_double), intent(out) :: g(n)
  integer(c_int64_t) :: i, j
  do i = 1, n
    j = min(max(int(idx(i), c_int64_t), 0_c_int64_t), n - 1) + 1
    g(i) = w(i) * x(j)
  end do
end subroutine
