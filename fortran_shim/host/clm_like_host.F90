!> clm_like_host — a small CLM-like land model that swaps its soil respiration column by column.
!>
!> Usage: clm_like_host [namelist file, default rsoil_host.nml]   (under MPI: mpirun -np N ...)
!>
!> Per time step and column it reads CLM drivers from the forcing file, computes CLM5-structure
!> heterotrophic respiration (HR = k * t_scalar * w_scalar at the model depth), and, for the columns
!> the namelist hands to the LSTM, takes the rsoil_couple result instead: the flux itself
!> (`coupling = 'flux'`) or the CLM rate times the LSTM's respiration scalar (`coupling = 'scalar'`,
!> mass-conserving). Columns whose coupler status is not ACTIVE/EXTRAPOLATING (spin-up, missing or
!> impossible drivers, masked, strict fallback) keep the host's own CLM-structure HR. A soil carbon
!> pool loses HR * dt. History (rank 0, gathered) every step; a restart file at the end.
program clm_like_host
  use, intrinsic :: iso_fortran_env, only: real64, int8, int64, output_unit
  use, intrinsic :: iso_c_binding, only: c_double, c_int, c_long_long
  use, intrinsic :: ieee_arithmetic, only: ieee_value, ieee_quiet_nan, ieee_is_finite
  use rsoil_couple_mod
  use host_parallel_mod
  use host_namelist_mod, only: host_config, host_read_namelist
  use host_forcing_mod, only: forcing_t, forcing_open, forcing_close, forcing_profile, forcing_at_depth
  use host_respiration_mod, only: clm_t_scalar, clm_w_scalar, umol_to_gc
  use host_history_mod
  use host_restart_mod, only: restart_write, restart_read
  implicit none

  integer, parameter :: r8 = real64
  integer, parameter :: STATUS_NO_COUPLER = -1   ! history code: Q10 after a coupler error

  type(host_config) :: cfg
  type(forcing_t) :: frc
  type(rsoil_coupler) :: cpl
  type(hist_t) :: hist
  character(len=1024) :: nml_path
  character(len=2048) :: msg
  character(len=64), allocatable :: attrs(:, :)
  logical :: have_coupler
  logical, allocatable :: use_lstm_global(:)
  integer :: ncol, begc, endc, nloc, t, t0, tstop, rc, future_steps, fmask, lag_steps, policy
  real(c_double) :: model_dt
  real(r8) :: time_restart
  integer(int64) :: clock0, clock1, clock_rate, clock_resp
  real(r8) :: seconds_loop, seconds_resp
  ! per-column (local) arrays, CLM-style real(r8)
  real(r8), allocatable :: tsoil_k(:), swc(:), rain(:), t_scalar(:), w_scalar(:), hr_q10(:), &
       hr(:), rs_umol(:), rs_gc(:), scalar(:), totsomc(:), x1(:, :), prof(:, :), fields(:, :)
  ! future drivers (policy 'supplied'), (future_steps, nloc); unallocated = absent in the step call
  real(r8), allocatable :: fut_t(:, :), fut_s(:, :), fut_p(:, :), win(:, :)
  integer(c_int), allocatable :: status(:)
  ! rank 0: gathered arrays
  real(r8), allocatable :: g_fields(:, :), g_prof(:, :)
  integer, allocatable :: g_status(:), g_nbytes(:)
  integer(int8), allocatable :: blob(:), g_blobs(:, :)
  integer(c_long_long) :: counts(0:RSC_NSTATUS - 1), steps_taken

  call par_init()
  nml_path = 'rsoil_host.nml'
  if (command_argument_count() >= 1) call get_command_argument(1, nml_path)
  call host_read_namelist(trim(nml_path), cfg)
  call forcing_open(frc, cfg%forcing_file, cfg%rsoil_depth_m)

  ncol = frc%ncol
  if (cfg%ncol > 0) then
     if (cfg%ncol > frc%ncol) call par_abort('namelist &rsoil_host: ncol is larger than the forcing ' &
          // 'file''s column dimension')
     ncol = cfg%ncol
  end if
  call par_decompose(ncol, begc, endc)
  nloc = endc - begc + 1
  use_lstm_global = select_columns(cfg, ncol)
  policy = rsc_policy_code(cfg%policy)

  ! ---- coupler (one per rank, for this rank's columns) --------------------------------------
  have_coupler = cfg%lstm_columns /= 'none'
  future_steps = 0; fmask = 0; lag_steps = 0
  if (have_coupler) then
     call cpl%init(trim(cfg%model_file), nloc, policy, strict=cfg%strict, chunk_size=cfg%chunk_size, &
          num_threads=cfg%num_threads, stat=rc, errmsg=msg)
     if (rc /= RSC_OK) call coupler_failed()
  end if
  if (have_coupler) then
     call cpl%info(future_steps=future_steps, step_seconds=model_dt, lag_steps=lag_steps, &
          future_vars_mask=fmask)
     if (abs(model_dt - frc%dtime) > 1e-3_r8) then
        write (msg, '(a,f0.1,a,f0.1,a)') 'forcing step (', frc%dtime, ' s) differs from the model''s ' &
             // 'step_seconds (', model_dt, ' s)'
        call par_abort(trim(msg))
     end if
     call cpl%set_mask(use_lstm_global(begc:endc))
     ! chunk_size > 0 asks for values independent of the decomposition: say so where the module cannot
     if (cfg%chunk_size > 0 .and. myrank == 0) then
        if (.not. cpl%rows_independent()) call par_warn('the model''s values depend on a column''s row in a ' &
             // 'call on this CPU (rows_independent = false): they can differ in the last bits between MPI ' &
             // 'decompositions')
     end if
  end if

  ! ---- initial state or restart ---------------------------------------------------------------
  allocate(tsoil_k(nloc), swc(nloc), rain(nloc), t_scalar(nloc), w_scalar(nloc), hr_q10(nloc), &
       hr(nloc), rs_umol(nloc), rs_gc(nloc), scalar(nloc), totsomc(nloc), status(nloc), x1(nloc, 1), &
       prof(nloc, frc%nlevgrnd), fields(nloc, NFIELD))
  if (have_coupler .and. policy == RSC_POLICY_SUPPLIED .and. future_steps > 0) then
     allocate(win(nloc, future_steps))
     if (iand(fmask, 1) /= 0) allocate(fut_t(future_steps, nloc))
     if (iand(fmask, 2) /= 0) allocate(fut_s(future_steps, nloc))
     if (iand(fmask, 4) /= 0) allocate(fut_p(future_steps, nloc))
  end if
  totsomc = cfg%soilc_init
  t0 = 1
  if (cfg%restart) then
     call restart_read(trim(cfg%restart_file_in), ncol, begc, t, time_restart, totsomc, blob)
     if (t < 1 .or. t >= frc%ntime) then
        write (msg, '(a,i0,a,i0,a)') 'restart file ''' // trim(cfg%restart_file_in) // ''': nstep = ', &
             t, ' lies outside the forcing''s time axis (1..', frc%ntime - 1, ')'
        call par_abort(trim(msg))
     end if
     if (abs(frc%time(t) - time_restart) > 1e-9_r8) call par_abort('restart file ''' // &
          trim(cfg%restart_file_in) // ''': time does not match the forcing file''s time axis at nstep')
     t0 = t + 1
     if (have_coupler .and. size(blob) > 0) then
        call cpl%put_state(blob, stat=rc, errmsg=msg)
        if (rc /= RSC_OK) call coupler_failed()
        ! issue 10 / F15: the host's step count and the coupler state's must agree (a file whose
        ! nstep and time were rewound together passed the time check and ran on with a state from
        ! another step)
        if (have_coupler) then
           call cpl%info(steps_taken=steps_taken)
           if (steps_taken /= t) then
              write (msg, '(a,i0,a,i0,a)') 'restart file ''' // trim(cfg%restart_file_in) // &
                   ''': nstep = ', t, ' but its coupler state (rsc_state) has taken ', steps_taken, &
                   ' steps (rsc_coupler_info steps_taken); the file is inconsistent'
              call par_abort(trim(msg))
           end if
        end if
        if (have_coupler) call cpl%set_mask(use_lstm_global(begc:endc))   ! the namelist's mask rules
     else if (have_coupler) then
        call par_warn('restart file has no coupler state: the coupler starts empty (spin-up)')
     end if
  end if
  tstop = frc%ntime
  if (cfg%stop_step > 0) tstop = min(cfg%stop_step, frc%ntime)
  if (tstop < t0) call par_abort('namelist &rsoil_host: stop_step lies before the first step to run')

  call run_attributes()
  if (myrank == 0) then
     allocate(g_fields(ncol, NFIELD), g_prof(ncol, frc%nlevgrnd), g_status(ncol))
     call hist_create(hist, cfg%hist_file, frc, ncol, merge(1, 0, use_lstm_global), attrs)
  else
     allocate(g_fields(1, NFIELD), g_prof(1, frc%nlevgrnd), g_status(1))
  end if

  ! ---- time loop --------------------------------------------------------------------------------
  clock_resp = 0
  call system_clock(clock0, clock_rate)
  do t = t0, tstop
     call forcing_profile(frc, t, begc, prof)
     call forcing_at_depth(frc, 'TSOI', t, begc, x1); tsoil_k = x1(:, 1)
     call forcing_at_depth(frc, 'H2OSOI', t, begc, x1); swc = x1(:, 1)
     call forcing_at_depth(frc, 'RAIN', t, begc, x1); rain = x1(:, 1)
     if (allocated(win)) call read_future(t)
     call respiration()
     call totsomc_update()
     call record(t)
  end do
  call system_clock(clock1)
  seconds_loop = par_max_time(real(clock1 - clock0, r8) / clock_rate)
  seconds_resp = par_max_time(real(clock_resp, r8) / clock_rate)

  ! ---- end: restart file, summary ---------------------------------------------------------------
  if (cfg%write_restart) call write_restart_file(tstop)
  if (myrank == 0) then
     call hist_close(hist)
     write (output_unit, '(a,i0,a,i0,a,i0,a,es12.5,a,es12.5)') 'clm_like_host: steps=', tstop - t0 + 1, &
          ' columns=', ncol, ' ranks=', nranks, ' seconds_per_step=', seconds_loop / (tstop - t0 + 1), &
          ' respiration_seconds_per_step=', seconds_resp / (tstop - t0 + 1)
     if (have_coupler) then
        call cpl%counters(counts)
        write (output_unit, '(a,i0,a,*(1x,i0))') 'clm_like_host: rank 0 coupler column-steps by status 0..', &
             RSC_NSTATUS - 1, ':', counts
     end if
  end if
  call forcing_close(frc)
  call cpl%finalize()
  call par_finalize()

contains

  !> LSTM selection from the namelist: all, none, an explicit list, every lstm_stride-th column
  !> from lstm_offset, or the first lstm_fraction of the columns.
  function select_columns(cfg, ncol) result(use)
    type(host_config), intent(in) :: cfg
    integer, intent(in) :: ncol
    logical :: use(ncol)
    integer :: c
    select case (cfg%lstm_columns)
    case ('all'); use = .true.
    case ('none'); use = .false.
    case ('list')
       if (any(cfg%lstm_column_list > ncol)) call par_abort('namelist &rsoil_host: lstm_column_list ' &
            // 'has a column id larger than the number of columns')
       use = .false.
       use(cfg%lstm_column_list) = .true.
    case ('stride'); use = [(c >= cfg%lstm_offset .and. mod(c - cfg%lstm_offset, cfg%lstm_stride) == 0, &
         c = 1, ncol)]
    case ('fraction'); use = [(c <= nint(cfg%lstm_fraction * ncol), c = 1, ncol)]
    end select
  end function select_columns

  !> A coupler call failed: stop, or (on_coupler_error = 'q10') carry on with Q10 in every column.
  subroutine coupler_failed()
    if (cfg%on_coupler_error /= 'q10') call par_abort(trim(msg))
    call par_warn(trim(msg) // ' -> CLM-structure Q10 in all columns from here on')
    call cpl%finalize(rc)
    have_coupler = .false.
  end subroutine coupler_failed

  !> Future drivers of steps t+1..t+future_steps that the model takes, from the forcing (policy
  !> 'supplied'; NaN past the end of the forcing, which the coupler reports as MISSING).
  subroutine read_future(t)
    integer, intent(in) :: t
    if (allocated(fut_t)) then
       call forcing_at_depth(frc, 'TSOI', t + 1, begc, win); fut_t = transpose(win)
    end if
    if (allocated(fut_s)) then
       call forcing_at_depth(frc, 'H2OSOI', t + 1, begc, win); fut_s = transpose(win)
    end if
    if (allocated(fut_p)) then
       call forcing_at_depth(frc, 'RAIN', t + 1, begc, win); fut_p = transpose(win)
    end if
  end subroutine read_future

  !> HR per column: CLM-structure baseline everywhere, the coupler's answer where it ran the LSTM.
  subroutine respiration()
    integer(int64) :: c0, c1
    logical :: lstm(nloc)
    call system_clock(c0)
    t_scalar = clm_t_scalar(tsoil_k)
    w_scalar = clm_w_scalar(swc, cfg%sand, cfg%clay)
    hr_q10 = umol_to_gc(cfg%k_baseline * t_scalar * w_scalar)
    if (have_coupler) call coupler_step()
    if (.not. have_coupler) then
       rs_umol = ieee_value(0._r8, ieee_quiet_nan); rs_gc = rs_umol
       scalar = 1; status = STATUS_NO_COUPLER
    end if
    lstm = status == RSC_STATUS_ACTIVE .or. status == RSC_STATUS_EXTRAPOLATING
    if (cfg%coupling == 'flux') then
       hr = merge(rs_gc, hr_q10, lstm)
    else
       hr = hr_q10 * merge(scalar, 1._r8, lstm)
    end if
    call system_clock(c1)
    clock_resp = clock_resp + (c1 - c0)
  end subroutine respiration

  subroutine coupler_step()
    call cpl%step(tsoil_k, swc, rain, rs_umol, rs_gc, scalar, status, future_tsoil_k=fut_t, &
         future_swc_m3m3=fut_s, future_precip_mm_s=fut_p, stat=rc, errmsg=msg)
    if (rc /= RSC_OK) call coupler_failed()
  end subroutine coupler_step

  !> Carbon mass balance of the one soil pool: what HR respires leaves the pool.
  subroutine totsomc_update()
    where (ieee_is_finite(hr)) totsomc = totsomc - hr * frc%dtime
  end subroutine totsomc_update

  !> Gather this step's fields to rank 0 and append a history record.
  subroutine record(t)
    integer, intent(in) :: t
    fields(:, F_HR) = hr
    fields(:, F_SR) = hr                       ! no root respiration in this host
    fields(:, F_HR_Q10) = hr_q10
    fields(:, F_RSC_RSOIL) = rs_gc
    fields(:, F_RSC_SCALAR) = scalar
    fields(:, F_T_SCALAR) = t_scalar
    fields(:, F_W_SCALAR) = w_scalar
    fields(:, F_TSOI_RSC) = tsoil_k
    fields(:, F_H2OSOI_RSC) = swc
    fields(:, F_RAIN) = rain
    fields(:, F_TOTSOMC) = totsomc
    call par_gather(fields, g_fields)
    call par_gather(prof, g_prof)
    call par_gather(status, g_status)
    if (myrank == 0) call hist_write(hist, frc, t, g_fields, g_prof, g_status)
  end subroutine record

  subroutine write_restart_file(tlast)
    integer, intent(in) :: tlast
    real(r8), allocatable :: g_c(:, :)
    if (have_coupler) then
       call cpl%get_state(blob)
    else
       allocate(blob(0))
    end if
    if (allocated(g_blobs)) deallocate(g_blobs)
    call par_gather(blob, g_blobs, g_nbytes)
    allocate(g_c(merge(ncol, 1, myrank == 0), 1))
    call par_gather(reshape(totsomc, [nloc, 1]), g_c)
    if (myrank == 0) call restart_write(trim(cfg%restart_file_out), tlast, frc%time(tlast), g_c(:, 1), &
         g_blobs, g_nbytes, attrs)
  end subroutine write_restart_file

  !> Global attributes of history and restart files: what was run.
  subroutine run_attributes()
    character(len=64) :: num
    attrs = reshape([character(len=64) :: &
         'title', 'clm_like_host: CLM-like host with rsoil_couple soil respiration', &
         'coupling', cfg%coupling, 'policy', cfg%policy, 'lstm_columns', cfg%lstm_columns, &
         'rsoil_couple_version', rsc_version(), 'model_id', '', 'lag_steps', '', &
         'rsoil_depth_m', '', 'clm_baseline', '', 'coupler', '', 'site', frc%site], [2, 11])
    if (have_coupler) attrs(2, 6) = cpl%model_id()
    write (num, '(i0)') lag_steps; attrs(2, 7) = num
    write (num, '(g0.6)') cfg%rsoil_depth_m; attrs(2, 8) = num
    write (num, '(a,g0.8,a,g0.6,a,g0.6)') 'k=', cfg%k_baseline, ' sand=', cfg%sand, ' clay=', cfg%clay
    attrs(2, 9) = num
    attrs(2, 10) = merge('active     ', 'unavailable', have_coupler)
  end subroutine run_attributes

end program clm_like_host
