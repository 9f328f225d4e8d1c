! real(c_float) kernel: a smoothed distance and an exponential gate in single precision.
subroutine f_single_precision(n, x, y, out) bind(C, name="f_single_precision")
  use iso_c_binding
  implicit none
  integer(c_int64_t), value :: n
  real(c_float), intent(in) :: x(n), y(n)
  real(c_float), intent(out) :: out(n)
  out = sqrt((x - y) ** 2 + 0.25) + x / (1.0 + exp(-y))
end subroutine
