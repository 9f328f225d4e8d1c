! Known failure: a derived type whose pointer components are aimed at the argument arrays,
! passed to a module procedure. Enzyme crashes while differentiating it (an assertion in
! GradientUtils::getNewFromOriginal, reached from invertPointerM).
module chain_mod
  use iso_c_binding
  implicit none
  type :: chain
    real(c_double), pointer :: pos(:)
    real(c_double), pointer :: mass(:)
  end type
contains
  function chain_energy(c, k) result(e)
    type(chain), intent(in) :: c
    real(c_double), intent(in) :: k
    real(c_double) :: e
    integer :: i
    e = 0
    do i = 1, size(c%pos) - 1
      e = e + 0.5d0 * k * (c%pos(i + 1) - c%pos(i) - 1) ** 2 * c%mass(i)
    end do
  end function
end module

subroutine f_derived_type(n, k, pos, mass, e) bind(C, name="f_derived_type")
  use iso_c_binding
  use chain_mod
  implicit none
  integer(c_int64_t), value :: n
  real(c_double), value :: k
  real(c_double), intent(in), target :: pos(n), mass(n)
  real(c_double), intent(out) :: e(1)
  type(chain) :: c
  c%pos => pos
  c%mass => mass
  e(1) = chain_energy(c, k)
end subroutine
