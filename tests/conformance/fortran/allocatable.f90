! Heap arrays: allocatable work arrays allocated and deallocated inside the kernel (flang lowers
! them to malloc/free), a two-stage smoothing. Explicit loops on purpose: flang 19 lowers array
! assignments that involve allocatables (`a(:) = x * x`, `y = b * x`) to its runtime
! (_FortranAAssign), which Enzyme cannot differentiate.
subroutine f_allocatable(n, x, y) bind(C, name="f_allocatable")
  use iso_c_binding
  implicit none
  integer(c_int64_t), value :: n
  real(c_double), intent(in) :: x(n)
  real(c_double), intent(out) :: y(n)
  real(c_double), allocatable :: a(:), b(:)
  integer(c_int64_t) :: i
  allocate(a(n), b(n))
  do i = 1, n
    a(i) = x(i) * x(i)
  end do
  b(1) = a(1)
  do i = 2, n
    b(i) = 0.5d0 * (a(i) + a(i - 1))
  end do
  do i = 1, n
    y(i) = b(i) * x(i)
  end do
  deallocate(a, b)
end subroutine
