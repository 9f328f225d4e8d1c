! Known failure (silently wrong derivative): the output s is zeroed inside the kernel (`s = 0`,
! which flang emits as a memset) and then scatter-added through an index array. Without
! -enzyme-loose-types Enzyme refuses the memset ("Cannot deduce type"); with it (which every
! Fortran pipeline but O2-strict passes) the build succeeds and the VJP drops the scatter's
! contribution: the cotangents of x and w miss every term that flows through s. The JVP is
! right. The corpus version (../../fortran/gather.f90) takes s as inout instead.
subroutine f_gather(n, idx, x, w, g, s) bind(C, name="f_gather")
  use iso_c_binding
  implicit none
  integer(c_int64_t), value :: n
  integer(c_int32_t), intent(in) :: idx(n)
  real(c_double), intent(in) :: x(n), w(n)
  real(c_double), intent(out) :: g(n), s(n)
  integer(c_int64_t) :: i, j
  s = 0
  do i = 1, n
    j = modulo(int(idx(i), c_int64_t), n) + 1
    g(i) = w(i) * x(j)
    s(j) = s(j) + x(i) * w(i) * w(i)
  end do
end subroutine
