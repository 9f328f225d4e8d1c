! A simulation kernel for simgrad: explicit finite differences for 1-D advection-diffusion,
!
!     du/dt + a du/dx = d/dx( kappa(x) du/dx ),    0 <= x <= L,   u fixed at both ends,
!
! on n grid points with spacing dx, advanced `steps` times by forward Euler with step dt, for a
! batch of nb independent initial states (the columns of u0) sharing one coefficient field.
! Diffusion is centred (the face coefficient is the mean of its two neighbours), advection is
! first-order upwind for a >= 0. The scheme is stable when dt*(2*max(kappa)/dx**2 + a/dx) <= 1;
! the kernel does not check this.
!
! Plain Fortran, mostly array assignments, no runtime library calls, so that flang-19 lowers it
! to loops that Enzyme differentiates (see shared/ENZYME.md, "Fortran"); nothing in it is
! specific to automatic differentiation. Built by simgrad from simgrad.toml next to this file;
! arrays are column-major (u0(n, nb): one state per column).

!> Advances the states u0(:, b) by `steps` explicit steps into u(:, b).
subroutine advdiff(n, nb, steps, dt, dx, vel, kappa, u0, u) bind(C, name="advdiff")
  use iso_c_binding, only: c_int64_t, c_double
  implicit none
  integer(c_int64_t), value :: n, nb, steps
  real(c_double), value :: dt, dx, vel
  real(c_double), intent(in) :: kappa(n), u0(n, nb)
  real(c_double), intent(out) :: u(n, nb)
  ! q(i) is the flux term through the face between points i and i+1 (with the sign that makes
  ! du(i)/dt = (q(i) - q(i-1)) / dx); kf(i) is the coefficient on that face.
  real(c_double) :: q(n - 1), kf(n - 1), ul, ur
  integer(c_int64_t) :: b, i, s

  kf = 0.5_c_double * (kappa(1:n-1) + kappa(2:n)) / dx
  do b = 1, nb
    u(:, b) = u0(:, b)
    do s = 1, steps
      ! The flux as a loop that reads each u(i) once and carries it to the next face, rather
      ! than the array expression kf*(u(2:n) - u(1:n-1)) - vel*u(1:n-1): Enzyme's reverse mode
      ! stores, per step, every loaded value the update overwrites, and the array form loads u
      ! twice (u(2:n) and u(1:n-1)), which doubled the tape (2 doubles per point and step, 153
      ! MiB for 10^4 points over 10^3 steps instead of 76 MiB) and the VJP time.
      ul = u(1, b)
      do i = 1, n - 1
        ur = u(i + 1, b)
        q(i) = kf(i) * (ur - ul) - vel * ul
        ul = ur
      end do
      u(2:n-1, b) = u(2:n-1, b) + (dt / dx) * (q(2:n-1) - q(1:n-2))
    end do
  end do
end subroutine advdiff
