! Known failure: array assignments that involve allocatable arrays. flang 19 lowers them to its
! runtime (_FortranAAssign, for the reallocation semantics of `a = ...` and for possibly
! overlapping operands), which Enzyme has no derivative for. The corpus version
! (../../fortran/allocatable.f90) uses explicit loops.
subroutine f_allocatable_assign(n, x, y) bind(C, name="f_allocatable_assign")
  use iso_c_binding
  implicit none
  integer(c_int64_t), value :: n
  real(c_double), intent(in) :: x(n)
  real(c_double), intent(out) :: y(n)
  real(c_double), allocatable :: a(:)
  allocate(a(n))
  a = x * x
  y = a * x
  deallocate(a)
end subroutine
