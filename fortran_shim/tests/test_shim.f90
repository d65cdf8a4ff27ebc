!> Tests of rsoil_couple_mod: error paths with stat/errmsg, sizes, mask, info, counters, restart
!> state round trip (bit for bit), finalize twice, finalizer. Usage: test_shim <model file>.
program test_shim
  use, intrinsic :: iso_c_binding, only: c_double, c_int, c_long_long, c_int8_t
  use rsoil_couple_mod
  implicit none
  integer, parameter :: ncol = 3
  type(rsoil_coupler) :: a, b
  character(len=1024) :: model
  character(len=512) :: msg
  integer :: rc, nfail, ps, fs, spin, t, n1, n2
  logical :: indep
  real(c_double) :: dt, tk(ncol), sw(ncol), pr(ncol), r(ncol), g(ncol), s(ncol)
  real(c_double), allocatable :: ra(:, :), rb(:, :)
  integer(c_int) :: st(ncol)
  integer(c_int), allocatable :: sa(:, :), sb(:, :)
  integer(c_int8_t), allocatable :: blob(:)
  integer(c_long_long) :: counts(0:RSC_NSTATUS - 1), taken

  nfail = 0
  call get_command_argument(1, model)

  ! a missing model file: stat = RSC_E_FILE, errmsg names the path, no handle
  call a%init('no/such/model.pt', ncol, RSC_POLICY_PERSISTENCE, stat=rc, errmsg=msg)
  call expect(rc == RSC_E_FILE, 'missing model: stat = RSC_E_FILE')
  call expect(index(msg, 'no/such/model.pt') > 0, 'missing model: errmsg names the path: ' // trim(msg))
  call expect(.not. a%initialized(), 'missing model: coupler not initialized')
  ! calls on an uninitialized coupler fail cleanly
  call a%step(tk, sw, pr, r, g, s, st, stat=rc)
  call expect(rc == RSC_E_BAD_HANDLE, 'step before init: stat = RSC_E_BAD_HANDLE')
  call a%finalize(stat=rc)
  call expect(rc == RSC_OK, 'finalize of a coupler never initialized')

  call a%init(trim(model), ncol, RSC_POLICY_PERSISTENCE, num_threads=1)
  call a%info(past_steps=ps, future_steps=fs, step_seconds=dt, spinup_steps=spin)
  call expect(dt == 1800 .and. ps == 48 .and. fs == 24, 'info: 1800 s steps, 48 past, 24 future')
  call expect(len_trim(a%model_id()) > 0, 'model_id not empty')
  indep = a%rows_independent(stat=rc)
  call expect(.not. indep .and. rc == RSC_OK, 'rows_independent: false with chunk_size 0 (not probed)')
  call a%step(tk(1:2), sw(1:2), pr(1:2), r(1:2), g(1:2), s(1:2), st(1:2), stat=rc, errmsg=msg)
  call expect(rc == RSC_E_INVALID_ARGUMENT .and. index(msg, 'tsoil_k has shape (2); expected (3)') > 0, &
       'wrong column count: RSC_E_INVALID_ARGUMENT: ' // trim(msg))
  call a%set_mask([.true., .false., .true.])

  ! run past spin-up, save the state, then run n2 more steps in a and in a restored b
  n1 = spin + 10
  n2 = 30
  do t = 1, n1
     call drivers(t)
     call a%step(tk, sw, pr, r, g, s, st)
  end do
  call expect(all(st([1, 3]) <= RSC_STATUS_EXTRAPOLATING), 'after spin-up: columns 1, 3 run the LSTM')
  call expect(st(2) == RSC_STATUS_MASKED, 'masked column 2 has status MASKED')
  call expect(all(abs(g - r * 12.011e-6_c_double) <= 1e-12_c_double * abs(g)), 'gC = 12.011e-6 umol')
  call a%get_state(blob)
  call expect(size(blob) == a%state_size(), 'state blob size')
  allocate(ra(ncol, n2), rb(ncol, n2), sa(ncol, n2), sb(ncol, n2))
  do t = 1, n2
     call drivers(n1 + t)
     call a%step(tk, sw, pr, ra(:, t), g, s, sa(:, t))
  end do
  call b%init(trim(model), ncol, RSC_POLICY_PERSISTENCE)
  call b%put_state(blob)
  call b%info(steps_taken=taken)
  call expect(taken == n1, 'put_state restores the step count')
  do t = 1, n2
     call drivers(n1 + t)
     call b%step(tk, sw, pr, rb(:, t), g, s, sb(:, t))
  end do
  call expect(all(ra == rb) .and. all(sa == sb), 'restored coupler is bit-for-bit the original')
  call a%counters(counts)
  call expect(sum(counts) == ncol * (n1 + n2), 'counters: one status per column-step')
  call expect(counts(RSC_STATUS_MASKED) == n1 + n2, 'counters: masked column counted every step')

  ! a state of another setup is refused with RSC_E_STATE, the coupler unchanged
  call b%init(trim(model), ncol + 1, RSC_POLICY_PERSISTENCE)
  call b%put_state(blob, stat=rc, errmsg=msg)
  call expect(rc == RSC_E_STATE, 'state of another ncol: RSC_E_STATE: ' // trim(msg))

  ! destroy twice is safe; the finalizer of a local coupler runs at the end of the block
  call a%finalize(stat=rc)
  call expect(rc == RSC_OK .and. .not. a%initialized(), 'finalize')
  call a%finalize(stat=rc)
  call expect(rc == RSC_OK, 'finalize twice')
  block
    type(rsoil_coupler) :: local
    call local%init(trim(model), 1, RSC_POLICY_LAGGED)
  end block
  call b%finalize()

  if (nfail > 0) then
     write (*, '(i0,a)') nfail, ' check(s) failed'
     error stop 1
  end if
  write (*, '(a,a)') 'test_shim: all checks passed, rsoil_couple ', rsc_version()

contains

  subroutine drivers(t)
    integer, intent(in) :: t
    real(c_double), parameter :: pi = acos(-1._c_double)
    tk = 273.15_c_double + 25 + 5 * sin(2 * pi * t / 48) + [0._c_double, 0.5_c_double, 1._c_double]
    sw = 0.08_c_double + 0.01_c_double * [0, 1, 2]
    pr = merge(1e-3_c_double, 0._c_double, mod(t, 97) == 0)
  end subroutine drivers

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

end program test_shim
