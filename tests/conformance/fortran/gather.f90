! An integer index array (0-based values wrapped into range with modulo, so all zeros is valid):
! a gather into g and a scatter-add into the inout array s.
! Notes: clamping with min/max instead of modulo lowers to llvm.smin/smax, which this Enzyme
! cannot differentiate (known-failures/fortran_int_minmax); zeroing s inside the kernel
! (`s = 0`, a memset) makes the VJP silently wrong under -enzyme-loose-types
! (known-failures/fortran_scatter_memset).
subroutine f_gather(n, idx, x, w, g, s) bind(C, name="f_gather")
  use iso_c_binding
  implicit none
  integer(c_int64_t), value :: n
  integer(c_int32_t), intent(in) :: idx(n)
  real(c_double), intent(in) :: x(n), w(n)
  real(c_double), intent(out) :: g(n)
  real(c_double), intent(inout) :: s(n)
  integer(c_int64_t) :: i, j
  do i = 1, n
    j = modulo(int(idx(i), c_int64_t), n) + 1
    g(i) = w(i) * x(j)
    s(j) = s(j) + x(i) * w(i) * w(i)
  end do
end subroutine
