!> A Fortran program that loads a simgrad kernel library through the `simgrad` module and checks
!> the advection-diffusion kernel `advdiff` (examples-fortran/diffusion) in every mode:
!>
!> * primal against the same scheme written here in plain Fortran, compiled by this compiler;
!> * JVP against central finite differences of the primal;
!> * VJP against the JVP by the dot-product test, with and without accumulation;
!> * no input or seed is modified, and wrong calls fail with the right status and a message.
!>
!> Usage: gradcheck LIBRARY [SPEC]
!>   LIBRARY  the path `simgrad build examples-fortran/diffusion/simgrad.toml` printed
!>   SPEC     that simgrad.toml: also build it through the module (usually a cache hit) and
!>            check what the build returns
!> Exit status 0 when every check passes, 1 otherwise.
program gradcheck
  use, intrinsic :: iso_c_binding
  use simgrad
  implicit none

  integer(c_int64_t), parameter :: n = 48, nb = 3, steps = 60
  real(c_double), parameter :: fd_step = 1.0e-6_c_double

  type(simgrad_library_t) :: lib
  type(simgrad_kernel_t) :: k
  type(simgrad_arg_desc_t) :: info
  character(len=4096) :: path, spec
  integer :: failures = 0, checks = 0, i, b
  integer(c_int32_t) :: st
  real(c_double) :: dx, dt, vel, x, err, lhs, rhs
  real(c_double), target :: kappa(n), u0(n, nb), u(n, nb), uref(n, nb)
  real(c_double), target :: dkappa(n), du0(n, nb), dvel, du(n, nb), ufd(n, nb), uplus(n, nb)
  real(c_double), target :: w(n, nb), gkappa(n), gu0(n, nb), gvel
  real(c_double), target :: gkappa2(n), gu02(n, nb), gvel2
  real(c_double), target :: kappa_copy(n), u0_copy(n, nb), w_copy(n, nb), dkappa_copy(n)
  real(c_double), target :: wide(2 * n, nb)
  type(simgrad_tensor) :: probe
  type(simgrad_arg_t), allocatable :: args(:), tin(:), tout(:), cin(:), cout(:)

  if (command_argument_count() < 1 .or. command_argument_count() > 2) then
    write (*, '(a)') 'usage: gradcheck LIBRARY [SPEC]'
    error stop 2
  end if
  call get_command_argument(1, path)
  spec = ''
  if (command_argument_count() == 2) call get_command_argument(2, spec)

  ! -- The library and the module agree --------------------------------------------------------
  write (*, '(a)') 'libsimgrad ' // simgrad_version_string() // ', module written for ' // &
    SIMGRAD_MODULE_VERSION
  call check('C ABI version matches the module', simgrad_abi_version() == SIMGRAD_MODULE_ABI_VERSION)
  call check('simgrad_tensor is 48 bytes (DLTensor)', c_sizeof(probe) == 48_c_size_t)

  call lib%open(trim(path))
  write (*, '(a, i0, a)') 'opened ' // lib%path() // ' with ', lib%kernel_count(), ' kernel(s): ' // &
    lib%kernel_name(1)
  call lib%kernel('advdiff', k)
  call check('memory order is Fortran (column-major)', k%memory_order() == SIMGRAD_ORDER_F)
  call check('primal was built', k%has_mode(SIMGRAD_MODE_PRIMAL))
  call check('jvp was built', k%has_mode(SIMGRAD_MODE_JVP))
  call check('vjp was built', k%has_mode(SIMGRAD_MODE_VJP))
  call check('9 arguments', k%arg_count() == 9)
  do i = 1, k%arg_count()
    info = k%arg_info(i)
    write (*, '(2x, a8, a, i0, a, i0, a, l1)') info%name, ' rank ', info%ndim, ' bits ', &
      info%dtype_bits, ' differentiable ', info%differentiable
  end do
  info = k%arg_info(8)
  call check('argument 8 is u0, rank 2', info%name == 'u0' .and. info%ndim == 2)

  ! -- Problem data (deterministic, the same for every compiler) -------------------------------
  dx = 1.0_c_double / real(n - 1, c_double)
  vel = 0.4_c_double
  do i = 1, int(n)
    x = real(i - 1, c_double) * dx
    kappa(i) = 0.5_c_double + 0.3_c_double * sin(6.0_c_double * x)
    dkappa(i) = hash(i, 1) - 0.5_c_double
    do b = 1, int(nb)
      u0(i, b) = sin(3.141592653589793_c_double * b * x) + 0.1_c_double * hash(i, 10 + b)
      du0(i, b) = hash(i, 20 + b) - 0.5_c_double
      w(i, b) = hash(i, 30 + b) - 0.5_c_double
    end do
  end do
  dt = 0.9_c_double / (2.0_c_double * maxval(kappa) / dx**2 + vel / dx)
  dvel = 0.7_c_double
  kappa_copy = kappa
  u0_copy = u0
  w_copy = w
  dkappa_copy = dkappa

  ! -- Primal ------------------------------------------------------------------------------------
  ! Sizes as default integers on purpose: simgrad_value converts them to the i64 the kernel takes.
  args = [simgrad_value(int(n)), simgrad_value(int(nb)), simgrad_value(int(steps)), &
          simgrad_value(dt), simgrad_value(dx), simgrad_value(vel), &
          simgrad_arg(kappa), simgrad_arg(u0), simgrad_arg(u)]
  u = -1.0_c_double
  call k%call(args)
  call reference(kappa, u0, vel, uref)
  err = maxval(abs(u - uref)) / maxval(abs(uref))
  call check_err('primal vs the scheme compiled here', err, 1.0e-12_c_double)

  ! -- JVP against central differences ---------------------------------------------------------
  allocate (tin(9), tout(9))
  tin(6) = simgrad_arg(dvel)
  tin(7) = simgrad_arg(dkappa)
  tin(8) = simgrad_arg(du0)
  tout(9) = simgrad_arg(du)
  call k%jvp(args, tin, tout)
  call primal(kappa + fd_step * dkappa, u0 + fd_step * du0, vel + fd_step * dvel, uplus)
  call primal(kappa - fd_step * dkappa, u0 - fd_step * du0, vel - fd_step * dvel, ufd)
  ufd = (uplus - ufd) / (2.0_c_double * fd_step)
  err = maxval(abs(du - ufd)) / maxval(abs(ufd))
  call check_err('jvp vs central differences', err, 1.0e-6_c_double)
  call check('jvp also runs the primal', maxval(abs(u - uref)) <= 1.0e-12_c_double * maxval(abs(uref)))

  ! -- VJP: dot-product test against the JVP ---------------------------------------------------
  allocate (cin(9), cout(9))
  cin(9) = simgrad_arg(w)
  cout(6) = simgrad_arg(gvel)
  cout(7) = simgrad_arg(gkappa)
  cout(8) = simgrad_arg(gu0)
  gkappa = 123.0_c_double
  gu0 = 123.0_c_double
  gvel = 123.0_c_double
  call k%vjp(args, cin, cout)
  lhs = sum(w * du)
  rhs = sum(gkappa * dkappa) + sum(gu0 * du0) + gvel * dvel
  err = abs(lhs - rhs) / max(abs(lhs), abs(rhs))
  call check_err('vjp vs jvp: <w, J v> = <J^T w, v> (overwrites the 123s)', err, 1.0e-10_c_double)
  ! The scalar's cotangent alone, against a one-sided look at d<w,u>/dvel by central differences.
  call primal(kappa, u0, vel + fd_step, uplus)
  call primal(kappa, u0, vel - fd_step, ufd)
  err = abs(sum(w * (uplus - ufd)) / (2.0_c_double * fd_step) - gvel) / abs(gvel)
  call check_err('vjp cotangent of the scalar vel vs central differences', err, 1.0e-6_c_double)

  ! Accumulation adds to what is there.
  gkappa2 = gkappa
  gu02 = gu0
  gvel2 = gvel
  cout(6) = simgrad_arg(gvel2)
  cout(7) = simgrad_arg(gkappa2)
  cout(8) = simgrad_arg(gu02)
  call k%vjp(args, cin, cout, accumulate=.true.)
  err = max(maxval(abs(gkappa2 - 2 * gkappa)) / maxval(abs(gkappa)), &
            maxval(abs(gu02 - 2 * gu0)) / maxval(abs(gu0)), abs(gvel2 - 2 * gvel) / abs(gvel))
  call check_err('vjp with accumulate=.true. adds', err, 1.0e-14_c_double)

  ! Bit for bit: the inputs must be untouched, not merely close.
  call check('no input or seed was modified', same(kappa, kappa_copy) .and. &
    same(reshape(u0, [n * nb]), reshape(u0_copy, [n * nb])) .and. &
    same(reshape(w, [n * nb]), reshape(w_copy, [n * nb])) .and. same(dkappa, dkappa_copy))

  ! -- Wrong calls fail cleanly ----------------------------------------------------------------
  args(7) = simgrad_arg(kappa(1:n - 1))
  call k%call(args, status=st)
  call expect('a too short kappa', st, SIMGRAD_ERR_SHAPE)
  args(7) = simgrad_arg(kappa)

  args(8) = simgrad_arg(wide(1:2 * n:2, :))
  call k%call(args, status=st)
  call expect('a strided section for u0', st, SIMGRAD_ERR_LAYOUT)
  args(8) = simgrad_arg(u0)

  cout(6) = simgrad_value(0.0_c_double)
  call k%vjp(args, cin, cout, status=st)
  call expect('a copied value receiving a cotangent', st, SIMGRAD_ERR_INVALID_ARGUMENT)

  call k%call(args(1:8), status=st)
  call expect('8 arguments instead of 9', st, SIMGRAD_ERR_INVALID_ARGUMENT)

  block
    type(simgrad_kernel_t) :: missing
    type(simgrad_library_t) :: nolib
    call lib%kernel('no_such_kernel', missing, status=st)
    call expect('an unknown kernel name', st, SIMGRAD_ERR_NOT_FOUND)
    call check('the failed lookup left no handle', .not. missing%is_open())
    call nolib%open('/nonexistent/libnothing.so', status=st)
    call expect('a library that does not exist', st, SIMGRAD_ERR_LIBRARY)
  end block

  ! -- Building through the module ------------------------------------------------------------
  if (len_trim(spec) > 0) then
    block
      type(simgrad_library_t) :: built
      character(len=:), allocatable :: built_path
      call simgrad_build_library_path(trim(spec), built_path, flags=SIMGRAD_BUILD_QUIET)
      call built%build(trim(spec), flags=SIMGRAD_BUILD_QUIET)
      call check('simgrad_build_library_path and lib%build agree: ' // built_path, &
        built%path() == built_path)
      call check('the built library has one kernel, advdiff', built%kernel_count() == 1 .and. &
        built%kernel_name(1) == 'advdiff')
      call check('its manifest names advdiff', index(built%manifest(), '"advdiff"') > 0)
      call built%free()
      call built%build('/nonexistent/simgrad.toml', status=st)
      call expect('building a spec that does not exist', st, SIMGRAD_ERR_SPEC)
      call check('a failed build leaves no handle', .not. built%is_open())
    end block
  end if

  ! -- Done --------------------------------------------------------------------------------------
  call k%free()
  call lib%free()
  deallocate (args, tin, tout, cin, cout)
  if (failures > 0) then
    write (*, '(a, i0, a, i0, a)') 'gradcheck: ', failures, ' of ', checks, ' checks FAILED'
    error stop 1
  end if
  write (*, '(a, i0, a)') 'gradcheck: all ', checks, ' checks passed'

contains

  !> Runs the kernel through simgrad on (perturbed) inputs. The inputs arrive as expressions,
  !> which have no address worth keeping, so they are copied into local TARGET arrays first.
  subroutine primal(kp, up, v, uout)
    real(c_double), intent(in) :: kp(:), up(:, :)
    real(c_double), intent(in) :: v
    real(c_double), target, intent(out) :: uout(:, :)
    real(c_double), target :: kt(size(kp)), ut(size(up, 1), size(up, 2))
    kt = kp
    ut = up
    call k%call([simgrad_value(n), simgrad_value(nb), simgrad_value(steps), &
                 simgrad_value(dt), simgrad_value(dx), simgrad_value(v), &
                 simgrad_arg(kt), simgrad_arg(ut), simgrad_arg(uout)])
  end subroutine primal

  !> The scheme of advdiff.f90, written independently with explicit loops.
  subroutine reference(kp, up, v, uout)
    real(c_double), intent(in) :: kp(:), up(:, :), v
    real(c_double), intent(out) :: uout(:, :)
    real(c_double) :: q(n - 1)
    integer :: s, j, c
    do c = 1, int(nb)
      uout(:, c) = up(:, c)
      do s = 1, int(steps)
        do j = 1, int(n) - 1
          q(j) = 0.5_c_double * (kp(j) + kp(j + 1)) / dx * (uout(j + 1, c) - uout(j, c)) &
                 - v * uout(j, c)
        end do
        do j = 2, int(n) - 1
          uout(j, c) = uout(j, c) + (dt / dx) * (q(j) - q(j - 1))
        end do
      end do
    end do
  end subroutine reference

  !> A deterministic number in [0, 1) for (i, stream), the same with every compiler.
  real(c_double) function hash(i, stream)
    integer, intent(in) :: i, stream
    real(c_double) :: t
    t = sin(real(i, c_double) * 12.9898_c_double + real(stream, c_double) * 78.233_c_double) &
        * 43758.5453_c_double
    hash = t - floor(t)
  end function hash

  logical function same(a, b)
    real(c_double), intent(in) :: a(:), b(:)
    same = all(transfer(a, 0_c_int64_t, size(a)) == transfer(b, 0_c_int64_t, size(b)))
  end function same

  subroutine check(what, ok)
    character(len=*), intent(in) :: what
    logical, intent(in) :: ok
    checks = checks + 1
    if (ok) then
      write (*, '(a)') 'ok      ' // what
    else
      failures = failures + 1
      write (*, '(a)') 'FAILED  ' // what
    end if
  end subroutine check

  subroutine check_err(what, e, tol)
    character(len=*), intent(in) :: what
    real(c_double), intent(in) :: e, tol
    character(len=40) :: nums
    write (nums, '(a, es9.2, a, es8.1, a)') ' (', e, ' <= ', tol, ')'
    call check(what // trim(nums), e <= tol)
  end subroutine check_err

  subroutine expect(what, got, want)
    character(len=*), intent(in) :: what
    integer(c_int32_t), intent(in) :: got, want
    character(len=:), allocatable :: msg
    msg = simgrad_last_error()
    call check(what // ' -> ' // simgrad_status_string(got) // ': ' // msg, &
      got == want .and. len(msg) > 0)
  end subroutine expect

end program gradcheck
