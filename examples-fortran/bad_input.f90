!> Every kind of bad input given to the `simgrad` module, with `status=`: prints one Markdown row
!> `| case | status | message |` per case, the message that `simgrad_last_error()` returns.
!>
!> The output is the Fortran table of docs/errors.md (ctest `bad_input_doc` compares the two;
!> `SIMGRAD_UPDATE_DOCS=1 ctest -R bad_input_doc` rewrites the table). The kernel library's path
!> is shown as `$LIB`, and a message of several lines is cut after its first (` …`).
!>
!> Usage: bad_input LIBRARY [--unhandled]
!>   LIBRARY      the path `simgrad build examples-fortran/diffusion/simgrad.toml` printed
!>   --unhandled  instead, make one bad call without `status=`: the module prints the error to
!>                standard error and stops the program (`error stop`)
!> Exit status 0 when every case failed with the status it should, 1 otherwise.
program bad_input
  use, intrinsic :: iso_c_binding
  use, intrinsic :: iso_fortran_env, only: error_unit
  use simgrad
  implicit none

  integer(c_int64_t), parameter :: n = 8, nb = 2, steps = 3
  real(c_double), parameter :: dt = 1.0e-3_c_double, dx = 0.125_c_double

  type(simgrad_library_t) :: lib
  type(simgrad_kernel_t) :: k
  type(simgrad_arg_desc_t) :: info
  character(len=4096) :: path, flag
  character(len=:), allocatable :: text
  integer(c_int32_t) :: st
  integer :: failures = 0, cases = 0
  logical :: yes

  real(c_double), target :: vel, kappa(n), u0(n, nb), u(n, nb)
  real(c_double), target :: flat(n * nb), u0_wide(n, nb + 1), rows(2 * n, nb)
  real(c_float), target :: kappa_f32(n)
  integer(c_int64_t), target :: kappa_i64(n), n_array(1), dn
  integer(c_int32_t), target :: dt_i32
  real(c_double), target :: ddt, dkappa(n), du0(n, nb), du(n, nb)
  real(c_double), target :: w(n, nb), w_short(n - 1, nb), gkappa(n), gdt
  type(simgrad_arg_t) :: args(9), tin(9), tout(9), cin(9), cout(9)

  if (command_argument_count() < 1 .or. command_argument_count() > 2) then
    write (error_unit, '(a)') 'usage: bad_input LIBRARY [--unhandled]'
    error stop 2
  end if
  call get_command_argument(1, path)
  flag = ''
  if (command_argument_count() == 2) call get_command_argument(2, flag)

  vel = 0.4_c_double
  kappa = 0.5_c_double
  u0 = 1.0_c_double
  flat = 0
  u0_wide = 0
  rows = 0
  kappa_f32 = 0.5_c_float
  kappa_i64 = 1
  n_array = n
  dn = 1
  dt_i32 = 1
  ddt = 1
  dkappa = 1
  du0 = 1
  w = 1
  w_short = 1
  gkappa = 0
  gdt = 0
  args = [simgrad_value(n), simgrad_value(nb), simgrad_value(steps), simgrad_value(dt), &
          simgrad_value(dx), simgrad_value(vel), simgrad_arg(kappa), simgrad_arg(u0), &
          simgrad_arg(u)]

  call lib%open(trim(path))
  call lib%kernel('advdiff', k)
  call k%call(args)

  if (flag == '--unhandled') then
    args(7) = simgrad_arg(kappa(1:n - 1))
    call k%call(args)
    error stop 'bad_input: the bad call did not stop the program'
  else if (len_trim(flag) > 0) then
    write (error_unit, '(a)') 'usage: bad_input LIBRARY [--unhandled]'
    error stop 2
  end if

  write (*, '(a)') '| case | status | message |'
  write (*, '(a)') '| --- | --- | --- |'

  ! -- Libraries ---------------------------------------------------------------------------------
  block
    type(simgrad_library_t) :: other
    call other%open('/nonexistent/libnothing.so', status=st)
    call row('`lib%open`: a library that does not exist', SIMGRAD_ERR_LIBRARY)
    call other%open('', status=st)
    call row('`lib%open`: an empty path', SIMGRAD_ERR_INVALID_ARGUMENT)
    call other%open(trim(path), manifest='/nonexistent/manifest.json', status=st)
    call row('`lib%open`: `manifest=` a file that does not exist', SIMGRAD_ERR_MANIFEST)
    call other%build('/nonexistent/simgrad.toml', status=st)
    call row('`lib%build`: a spec that does not exist', SIMGRAD_ERR_SPEC)
    call expect_true('a failed open or build leaves no handle', .not. other%is_open())
    call simgrad_build_library_path('/nonexistent/simgrad.toml', text, status=st)
    call row('`simgrad_build_library_path`: a spec that does not exist', SIMGRAD_ERR_SPEC)
    yes = other%kernel_count(status=st) > 0
    call row('`lib%kernel_count`: a library never opened', SIMGRAD_ERR_NULL_ARGUMENT)
    call other%kernel('advdiff', k, status=st)
    call row('`lib%kernel`: from a library never opened', SIMGRAD_ERR_NULL_ARGUMENT)
    call lib%kernel('advdiff', k)
  end block

  ! -- Looking up and inspecting a kernel --------------------------------------------------------
  block
    type(simgrad_kernel_t) :: missing
    call lib%kernel('no_such_kernel', missing, status=st)
    call row('`lib%kernel`: an unknown kernel name', SIMGRAD_ERR_NOT_FOUND)
    call expect_true('the failed lookup left no handle', .not. missing%is_open())
    text = lib%kernel_name(0, status=st)
    call row('`lib%kernel_name`: index 0 (indices are 1-based)', SIMGRAD_ERR_NOT_FOUND)
    text = lib%kernel_name(2, status=st)
    call row('`lib%kernel_name`: index 2 of 1', SIMGRAD_ERR_NOT_FOUND)
    info = k%arg_info(0, status=st)
    call row('`k%arg_info`: index 0 (indices are 1-based)', SIMGRAD_ERR_NOT_FOUND)
    info = k%arg_info(10, status=st)
    call row('`k%arg_info`: index 10 of 9', SIMGRAD_ERR_NOT_FOUND)
    yes = k%has_mode(3_c_int32_t, status=st)
    call row('`k%has_mode`: mode 3', SIMGRAD_ERR_NOT_FOUND)
    call missing%call(args, status=st)
    call row('`k%call`: a kernel never looked up', SIMGRAD_ERR_NULL_ARGUMENT)
  end block

  ! -- Calls: the argument list ------------------------------------------------------------------
  call k%call(args(1:8), status=st)
  call row('`k%call`: 8 arguments for 9 (`args(1:8)`)', SIMGRAD_ERR_INVALID_ARGUMENT)
  call k%call([args, simgrad_value(0)], status=st)
  call row('`k%call`: 10 arguments for 9', SIMGRAD_ERR_INVALID_ARGUMENT)
  args(7) = simgrad_none()
  call k%call(args, status=st)
  call row('`k%call`: an absent entry (`simgrad_none()`) for `kappa`', SIMGRAD_ERR_DTYPE)
  args(7) = simgrad_arg(kappa)

  ! -- Calls: element types ----------------------------------------------------------------------
  args(7) = simgrad_arg(kappa_f32)
  call k%call(args, status=st)
  call row('`k%call`: a `real(c_float)` array for the f64 `kappa`', SIMGRAD_ERR_DTYPE)
  args(7) = simgrad_arg(kappa_i64)
  call k%call(args, status=st)
  call row('`k%call`: an `integer(c_int64_t)` array for the f64 `kappa`', SIMGRAD_ERR_DTYPE)
  args(7) = simgrad_arg(kappa)
  args(4) = simgrad_arg(dt_i32)
  call k%call(args, status=st)
  call row('`k%call`: an `integer(c_int32_t)` variable for the f64 scalar `dt`', &
    SIMGRAD_ERR_DTYPE)
  args(4) = simgrad_value(dt)
  args(1) = simgrad_value(8.0_c_double)
  call k%call(args, status=st)
  call row('`k%call`: a real value (`simgrad_value(8.0_c_double)`) for the size `n`', &
    SIMGRAD_ERR_DTYPE)
  args(1) = simgrad_value(n)

  ! -- Calls: ranks and shapes -------------------------------------------------------------------
  args(7) = simgrad_arg(kappa(1:n - 1))
  call k%call(args, status=st)
  call row('`k%call`: `kappa(1:n-1)`, one element short', SIMGRAD_ERR_SHAPE)
  args(7) = simgrad_arg(kappa)
  args(8) = simgrad_arg(flat)
  call k%call(args, status=st)
  call row('`k%call`: a rank-1 array for the rank-2 `u0`', SIMGRAD_ERR_SHAPE)
  args(8) = simgrad_arg(u0_wide)
  call k%call(args, status=st)
  call row('`k%call`: `u0` of shape (n, nb+1)', SIMGRAD_ERR_SHAPE)
  args(8) = simgrad_arg(u0)
  args(1) = simgrad_arg(n_array)
  call k%call(args, status=st)
  call row('`k%call`: an array for the size `n`', SIMGRAD_ERR_SHAPE)
  args(1) = simgrad_value(-1)
  call k%call(args, status=st)
  call row('`k%call`: a negative size (`simgrad_value(-1)`)', SIMGRAD_ERR_SHAPE)
  args(1) = simgrad_value(n)

  ! -- Calls: memory layout and aliasing ---------------------------------------------------------
  args(8) = simgrad_arg(rows(1:2 * n:2, :))
  call k%call(args, status=st)
  call row('`k%call`: a strided section `rows(1:2*n:2, :)` for `u0`', SIMGRAD_ERR_LAYOUT)
  args(8) = simgrad_arg(rows(1:n, :))
  call k%call(args, status=st)
  call row('`k%call`: the section `rows(1:n, :)` of a taller array for `u0`', SIMGRAD_ERR_LAYOUT)
  args(8) = simgrad_arg(u0)
  args(9) = simgrad_arg(u0)
  call k%call(args, status=st)
  call row('`k%call`: the output `u` is the input `u0`', SIMGRAD_ERR_ALIAS)
  args(9) = simgrad_arg(u)

  ! -- Forward mode (JVP) ------------------------------------------------------------------------
  tin(7) = simgrad_arg(dkappa)
  tout(9) = simgrad_arg(du)
  call k%jvp(args, tin(1:8), tout, status=st)
  call row('`k%jvp`: 8 input tangents for 9 arguments', SIMGRAD_ERR_INVALID_ARGUMENT)
  tin(9) = simgrad_arg(du0)
  call k%jvp(args, tin, tout, status=st)
  call row('`k%jvp`: an input tangent of the output `u`', SIMGRAD_ERR_INVALID_ARGUMENT)
  tin(9) = simgrad_none()
  tin(1) = simgrad_arg(dn)
  call k%jvp(args, tin, tout, status=st)
  call row('`k%jvp`: a tangent of the size `n`', SIMGRAD_ERR_INVALID_ARGUMENT)
  tin(1) = simgrad_none()
  tin(4) = simgrad_arg(ddt)
  call k%jvp(args, tin, tout, status=st)
  call row('`k%jvp`: a tangent of `dt`, declared `differentiable = false`', &
    SIMGRAD_ERR_INVALID_ARGUMENT)
  tin(4) = simgrad_none()
  tin(7) = simgrad_arg(dkappa(1:n - 1))
  call k%jvp(args, tin, tout, status=st)
  call row('`k%jvp`: the tangent of `kappa` one element short', SIMGRAD_ERR_SHAPE)
  tin(7) = simgrad_arg(dkappa)
  tout(9) = simgrad_value(0.0_c_double)
  call k%jvp(args, tin, tout, status=st)
  call row('`k%jvp`: a copied value (`simgrad_value`) as the output tangent', &
    SIMGRAD_ERR_INVALID_ARGUMENT)
  tin(8) = simgrad_arg(du0)
  tout(9) = simgrad_arg(du0)
  call k%jvp(args, tin, tout, status=st)
  call row('`k%jvp`: the output tangent is the input tangent of `u0`', SIMGRAD_ERR_ALIAS)
  tin(8) = simgrad_none()
  tout(9) = simgrad_arg(du)

  ! -- Reverse mode (VJP) ------------------------------------------------------------------------
  cin(9) = simgrad_arg(w)
  cout(7) = simgrad_arg(gkappa)
  call k%vjp(args, cin, cout(1:8), status=st)
  call row('`k%vjp`: 8 output cotangents for 9 arguments', SIMGRAD_ERR_INVALID_ARGUMENT)
  cout(6) = simgrad_value(0.0_c_double)
  call k%vjp(args, cin, cout, status=st)
  call row('`k%vjp`: a copied value (`simgrad_value`) receiving the cotangent of `vel`', &
    SIMGRAD_ERR_INVALID_ARGUMENT)
  cout(6) = simgrad_none()
  cin(7) = simgrad_arg(dkappa)
  call k%vjp(args, cin, cout, status=st)
  call row('`k%vjp`: a seed for the input `kappa`', SIMGRAD_ERR_INVALID_ARGUMENT)
  cin(7) = simgrad_none()
  cout(4) = simgrad_arg(gdt)
  call k%vjp(args, cin, cout, status=st)
  call row('`k%vjp`: a cotangent of `dt`, declared `differentiable = false`', &
    SIMGRAD_ERR_INVALID_ARGUMENT)
  cout(4) = simgrad_none()
  cin(9) = simgrad_arg(w_short)
  call k%vjp(args, cin, cout, status=st)
  call row('`k%vjp`: the seed of `u` one row short', SIMGRAD_ERR_SHAPE)
  cin(9) = simgrad_arg(w)
  cout(7) = simgrad_arg(w(:, 1))
  call k%vjp(args, cin, cout, status=st)
  call row('`k%vjp`: the cotangent of `kappa` is part of the seed', SIMGRAD_ERR_ALIAS)
  cout(7) = simgrad_arg(gkappa)

  ! -- The library works after all of this -------------------------------------------------------
  call k%vjp(args, cin, cout, status=st)
  call expect_true('a correct VJP after the bad calls', st == SIMGRAD_OK .and. &
    len(simgrad_last_error()) == 0)
  call k%free()
  call lib%free()

  if (failures > 0) then
    write (error_unit, '(a, i0, a, i0, a)') 'bad_input: ', failures, ' of ', cases, &
      ' cases did not fail as they should'
    error stop 1
  end if

contains

  !> Prints the row of the call just made (its status `st`, the last error) and checks the
  !> status against `want`.
  subroutine row(what, want)
    character(len=*), intent(in) :: what
    integer(c_int32_t), intent(in) :: want
    character(len=:), allocatable :: msg
    character(len=16) :: code
    cases = cases + 1
    msg = simgrad_last_error()
    write (code, '(i0)') st
    write (*, '(a)') '| ' // what // ' | ' // trim(code) // ' `' // simgrad_status_string(st) // &
      '` | ' // cell(msg) // ' |'
    if (st /= want .or. len(msg) == 0) then
      failures = failures + 1
      write (error_unit, '(a)') 'bad_input: ' // what // ': expected ' // &
        simgrad_status_string(want) // ' with a message, got ' // simgrad_status_string(st) // &
        ': "' // msg // '"'
    end if
  end subroutine row

  subroutine expect_true(what, ok)
    character(len=*), intent(in) :: what
    logical, intent(in) :: ok
    cases = cases + 1
    if (.not. ok) then
      failures = failures + 1
      write (error_unit, '(a)') 'bad_input: ' // what // ': FAILED'
    end if
  end subroutine expect_true

  !> A message as a table cell: its first line only (` …` when there are more), the library's
  !> path as `$LIB`, and `|` escaped.
  function cell(msg) result(c)
    character(len=*), intent(in) :: msg
    character(len=:), allocatable :: c, lib_path
    integer :: i
    c = msg
    i = index(c, new_line('a'))
    if (i > 0) c = c(:i - 1) // ' …'
    lib_path = trim(path)
    c = replaced(c, lib_path, '$LIB')
    c = replaced(c, '|', '\|')
  end function cell

  !> `s` with every `old` replaced by `new`.
  function replaced(s, old, new) result(r)
    character(len=*), intent(in) :: s, old, new
    character(len=:), allocatable :: r
    integer :: i, j
    r = ''
    i = 1
    do
      j = index(s(i:), old)
      if (j == 0 .or. len(old) == 0) exit
      r = r // s(i:i + j - 2) // new
      i = i + j - 1 + len(old)
    end do
    r = r // s(i:)
  end function replaced

end program bad_input
