! Branches: max, min, merge, abs, sign and where/elsewhere on shifted inputs.
subroutine f_branches(n, x, y) bind(C, name="f_branches")
  use iso_c_binding
  implicit none
  integer(c_int64_t), value :: n
  real(c_double), intent(in) :: x(n)
  real(c_double), intent(out) :: y(n)
  real(c_double) :: v(n)
  v = x - 1.2d0
  where (v > 0)
    y = v * v + max(v, 0.3d0 * v * v)
  elsewhere
    y = abs(v) + min(x, 1.5d0) * merge(v, -v, x > 0.8d0)
  end where
  y = y + sign(1.0d0, v) * v
end subroutine
