!> The smallest host of rsoil_couple: what a land model adds to use the LSTM for its columns.
!> Build against the installed package:
!>   gfortran $(rsoil-couple config --fflags) minimal_host.f90 $(rsoil-couple config --flibs)
!> Run: ./a.out model.pt   (prints the last step's Rsoil and status per column)
program minimal_host
  use, intrinsic :: iso_fortran_env, only: r8 => real64
  use rsoil_couple_mod, only: rsoil_coupler, RSC_POLICY_PERSISTENCE
  implicit none
  integer, parameter :: ncol = 4, nsteps = 400
  type(rsoil_coupler) :: rsc
  real(r8) :: tsoil_k(ncol), swc(ncol), rain(ncol)                 ! the host's own column arrays
  real(r8) :: rsoil(ncol), rsoil_gc(ncol), scalar(ncol)
  integer :: status(ncol), t, c, rc
  character(len=512) :: model, msg

  call get_command_argument(1, model)
  call rsc%init(trim(model), ncol, RSC_POLICY_PERSISTENCE, stat=rc, errmsg=msg)
  if (rc /= 0) error stop trim(msg)                                 ! or fall back to the host's Q10
  call rsc%set_mask([.true., .true., .false., .true.])              ! column 3 keeps Q10
  do t = 1, nsteps
     do c = 1, ncol
        tsoil_k(c) = 298.15_r8 + 6 * sin(2 * acos(-1._r8) * t / 48) + 0.5_r8 * c
        swc(c) = 0.06_r8 + 0.01_r8 * c
        rain(c) = merge(2e-3_r8, 0._r8, mod(t, 150) == 0)          ! mm/s
     end do
     call rsc%step(tsoil_k, swc, rain, rsoil, rsoil_gc, scalar, status)   ! no stat: errors stop
  end do
  do c = 1, ncol
     print '(i0, 1x, es24.16, 1x, i0)', c, rsoil(c), status(c)
  end do
  call rsc%finalize()
end program minimal_host
