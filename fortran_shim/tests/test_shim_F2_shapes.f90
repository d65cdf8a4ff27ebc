!> Regression test of issue 10 / F2: every dimension of every array argument of rsoil_couple_mod is
!> checked against the coupler (ncol, and future_steps from rsc_coupler_info) before any pointer
!> reaches C. Before the fix only dimension 2 of the future arrays was checked: future_tsoil_k(1, ncol)
!> for a model with 24 future steps was accepted (C read 24 * ncol values from an array of ncol:
!> garbage statuses, and a segfault at ncol = 300000).
!>
!> Usage: test_shim_F2_shapes <model file>          checks with stat/errmsg (exit 0 when all pass)
!>        test_shim_F2_shapes <model file> stop     the same mistake without stat: must ERROR STOP
program test_shim_F2_shapes
  use, intrinsic :: iso_c_binding, only: c_double, c_int, c_long_long
  use rsoil_couple_mod
  implicit none
  integer, parameter :: ncol = 3
  type(rsoil_coupler) :: a, p
  character(len=1024) :: model, mode
  character(len=512) :: msg
  integer :: rc, nfail, fs, t
  real(c_double) :: tk(ncol), sw(ncol), pr(ncol), r(ncol), g(ncol), s(ncol), tk1(ncol + 1)
  real(c_double), allocatable :: ft(:, :), fbad(:, :)
  integer(c_int) :: st(ncol), st1(ncol + 1)
  integer(c_long_long) :: counts(0:RSC_NSTATUS - 1), counts_short(0:RSC_NSTATUS - 2)

  nfail = 0
  call get_command_argument(1, model)
  call get_command_argument(2, mode)
  tk = 290; sw = 0.1_c_double; pr = 0; tk1 = 290

  call a%init(trim(model), ncol, RSC_POLICY_SUPPLIED, num_threads=1)
  call a%info(future_steps=fs)
  allocate(ft(fs, ncol))
  ft = 290

  if (mode == 'stop') then
     ! no stat: the program must end with ERROR STOP and the message (checked by CTest)
     allocate(fbad(1, ncol))
     fbad = 290
     call a%step(tk, sw, pr, r, g, s, st, future_tsoil_k=fbad)
     write (*, '(a)') 'test_shim_F2_shapes: step with future_tsoil_k(1, ncol) returned'
     stop 0
  end if

  ! the correct shapes work
  call a%step(tk, sw, pr, r, g, s, st, future_tsoil_k=ft, stat=rc, errmsg=msg)
  call expect(rc == RSC_OK, 'supplied: future_tsoil_k(future_steps, ncol) accepted')

  ! future arrays: each dimension on its own
  call bad_future(1, ncol, 'future_tsoil_k(1, ncol)')
  call bad_future(fs - 1, ncol, 'future_tsoil_k(future_steps-1, ncol)')
  call bad_future(fs + 1, ncol, 'future_tsoil_k(future_steps+1, ncol)')
  call bad_future(fs, ncol - 1, 'future_tsoil_k(future_steps, ncol-1)')
  call bad_future(fs, ncol + 1, 'future_tsoil_k(future_steps, ncol+1)')
  call bad_future(ncol, fs, 'future_tsoil_k(ncol, future_steps) (transposed)')

  ! every 1-D argument of step, one at a time; the message names it
  call a%step(tk1, sw, pr, r, g, s, st, stat=rc, errmsg=msg)
  call expect_named(rc, msg, 'tsoil_k', '(4)', '(3)')
  call a%step(tk, sw(1:2), pr, r, g, s, st, stat=rc, errmsg=msg)
  call expect_named(rc, msg, 'swc_m3m3', '(2)', '(3)')
  call a%step(tk, sw, pr(1:1), r, g, s, st, stat=rc, errmsg=msg)
  call expect_named(rc, msg, 'precip_mm_s', '(1)', '(3)')
  call a%step(tk, sw, pr, tk1, g, s, st, stat=rc, errmsg=msg)
  call expect_named(rc, msg, 'rsoil_umol_m2_s', '(4)', '(3)')
  call a%step(tk, sw, pr, r, g(1:2), s, st, stat=rc, errmsg=msg)
  call expect_named(rc, msg, 'rsoil_gc_m2_s', '(2)', '(3)')
  call a%step(tk, sw, pr, r, g, s(1:2), st, stat=rc, errmsg=msg)
  call expect_named(rc, msg, 'resp_scalar', '(2)', '(3)')
  call a%step(tk, sw, pr, r, g, s, st1, stat=rc, errmsg=msg)
  call expect_named(rc, msg, 'status', '(4)', '(3)')

  ! set_mask and counters
  call a%set_mask([.true., .false.], stat=rc, errmsg=msg)
  call expect_named(rc, msg, 'use_model', '(2)', '(3)')
  call a%counters(counts_short, stat=rc, errmsg=msg)
  call expect(rc == RSC_E_INVALID_ARGUMENT .and. index(msg, 'counts') > 0, &
       'counters with RSC_NSTATUS-1 elements refused: ' // trim(msg))
  call a%counters(counts, stat=rc, errmsg=msg)
  call expect(rc == RSC_OK .and. sum(counts) == ncol, 'counters(0:RSC_NSTATUS-1) after one step')

  ! after all those refusals the coupler is unchanged: it took exactly one step
  call a%info(future_steps=fs)
  call a%step(tk, sw, pr, r, g, s, st, future_tsoil_k=ft, stat=rc, errmsg=msg)
  call a%counters(counts)
  call expect(rc == RSC_OK .and. sum(counts) == 2 * ncol, 'refused calls left the coupler unchanged')

  ! a future array under a policy without future drivers stays an error (from C)
  call p%init(trim(model), ncol, RSC_POLICY_PERSISTENCE, num_threads=1)
  call p%step(tk, sw, pr, r, g, s, st, future_tsoil_k=ft, stat=rc, errmsg=msg)
  call expect(rc == RSC_E_INVALID_ARGUMENT, 'persistence + future array refused: ' // trim(msg))
  do t = 1, 3
     call p%step(tk, sw, pr, r, g, s, st, stat=rc)
  end do
  call expect(rc == RSC_OK, 'persistence without future arrays runs')

  call a%finalize()
  call p%finalize()
  if (nfail > 0) then
     write (*, '(i0,a)') nfail, ' check(s) failed'
     error stop 1
  end if
  write (*, '(a)') 'test_shim_F2_shapes: all checks passed'

contains

  subroutine bad_future(n1, n2, what)
    integer, intent(in) :: n1, n2
    character(len=*), intent(in) :: what
    character(len=64) :: got, want
    if (allocated(fbad)) deallocate(fbad)
    allocate(fbad(n1, n2))
    fbad = 290
    write (got, '(a,i0,a,i0,a)') '(', n1, ', ', n2, ')'
    write (want, '(a,i0,a,i0,a)') '(', fs, ', ', ncol, ')'
    msg = ''
    call a%step(tk, sw, pr, r, g, s, st, future_tsoil_k=fbad, stat=rc, errmsg=msg)
    call expect(rc == RSC_E_INVALID_ARGUMENT .and. index(msg, 'future_tsoil_k') > 0 .and. &
         index(msg, trim(got)) > 0 .and. index(msg, trim(want)) > 0, &
         what // ' refused, message names it, its shape and the expected one: ' // trim(msg))
  end subroutine bad_future

  subroutine expect_named(rc, msg, name, got, want)
    integer, intent(in) :: rc
    character(len=*), intent(in) :: msg, name, got, want
    call expect(rc == RSC_E_INVALID_ARGUMENT .and. index(msg, ' ' // name // ' ') > 0 .and. &
         index(msg, got) > 0 .and. index(msg, want) > 0, name // ' of shape ' // got // &
         ' refused: ' // trim(msg))
  end subroutine expect_named

  subroutine expect(ok, what)
    logical, intent(in) :: ok
    character(len=*), intent(in) :: what
    if (ok) then
       write (*, '(a)') 'ok    ' // what
    else
       write (*, '(a)') 'FAIL  ' // what
       nfail = nfail + 1
    end if
  end subroutine expect

end program test_shim_F2_shapes
