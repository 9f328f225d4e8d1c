! A derived type (struct of arrays) filled inside the kernel from the argument arrays with
! whole-array section copies, passed to an internal procedure: spring chain energy. (A derived
! type with *pointer* components aimed at the arguments crashes Enzyme: see
! tests/conformance/known-failures/fortran_derived_type_pointers.)
subroutine f_derived_type(n, k, pos, mass, e) bind(C, name="f_derived_type")
  use iso_c_binding
  implicit none
  integer(c_int64_t), value :: n
  real(c_double), value :: k
  real(c_double), intent(in) :: pos(n), mass(n)
  real(c_double), intent(out) :: e(1)
  type :: chain
    real(c_double) :: pos(16), mass(16), k
    integer(c_int64_t) :: n
  end type
  type(chain) :: c
  e(1) = 0
  if (n > 16) return
  c%n = n
  c%k = k
  c%pos(1:n) = pos
  c%mass(1:n) = mass
  e(1) = chain_energy(c)
contains
  function chain_energy(c) result(en)
    type(chain), intent(in) :: c
    real(c_double) :: en
    integer(c_int64_t) :: i
    en = 0
    do i = 1, c%n - 1
      en = en + 0.5d0 * c%k * (c%pos(i + 1) - c%pos(i) - 1) ** 2 * c%mass(i) + sin(c%pos(i))
    end do
  end function
end subroutine
