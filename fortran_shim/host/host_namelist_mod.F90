!> The host's run configuration: namelist group `&rsoil_host`, read and checked in one place.
!> A bad value stops the run with one line naming the key (see `host_check_config`).
module host_namelist_mod
  use, intrinsic :: iso_fortran_env, only: real64
  use host_parallel_mod, only: par_abort
  implicit none
  private
  public :: host_config, host_read_namelist

  integer, parameter :: path_len = 1024, max_list = 10000

  type :: host_config
     character(len=path_len) :: model_file = '', forcing_file = '', hist_file = 'rsoil_host.h0.nc', &
          restart_file_in = '', restart_file_out = 'rsoil_host.r.nc'
     character(len=16) :: lstm_columns = 'all', policy = 'lagged', coupling = 'flux', &
          on_coupler_error = 'stop'
     integer, allocatable :: lstm_column_list(:)
     integer :: lstm_stride = 2, lstm_offset = 1, ncol = -1, stop_step = -1, chunk_size = 64, &
          num_threads = 1
     real(real64) :: lstm_fraction = 0.5_real64, rsoil_depth_m = 0.15_real64, &
          k_baseline = 1.0_real64, sand = 80.0_real64, clay = 5.0_real64, &
          soilc_init = 5000.0_real64
     logical :: strict = .false., restart = .false., write_restart = .false.
  end type host_config

contains

  !> Read `&rsoil_host` from `path` and check every value; stops with a one-line message on error.
  subroutine host_read_namelist(path, cfg)
    character(len=*), intent(in) :: path
    type(host_config), intent(out) :: cfg
    ! namelist variables (defaults from host_config)
    character(len=path_len) :: model_file, forcing_file, hist_file, restart_file_in, restart_file_out
    character(len=16) :: lstm_columns, policy, coupling, on_coupler_error
    integer :: lstm_column_list(max_list), lstm_stride, lstm_offset, ncol, stop_step, chunk_size, &
         num_threads
    real(real64) :: lstm_fraction, rsoil_depth_m, k_baseline, sand, clay, soilc_init
    logical :: strict, restart, write_restart
    namelist /rsoil_host/ model_file, forcing_file, hist_file, restart_file_in, restart_file_out, &
         lstm_columns, lstm_column_list, lstm_stride, lstm_offset, lstm_fraction, policy, coupling, &
         strict, chunk_size, num_threads, on_coupler_error, ncol, stop_step, rsoil_depth_m, &
         k_baseline, sand, clay, soilc_init, restart, write_restart
    integer :: unit, ios
    character(len=512) :: iomsg

    model_file = cfg%model_file; forcing_file = cfg%forcing_file; hist_file = cfg%hist_file
    restart_file_in = cfg%restart_file_in; restart_file_out = cfg%restart_file_out
    lstm_columns = cfg%lstm_columns; policy = cfg%policy; coupling = cfg%coupling
    on_coupler_error = cfg%on_coupler_error; lstm_column_list = -1; lstm_stride = cfg%lstm_stride
    lstm_offset = cfg%lstm_offset; ncol = cfg%ncol; stop_step = cfg%stop_step
    chunk_size = cfg%chunk_size; num_threads = cfg%num_threads; lstm_fraction = cfg%lstm_fraction
    rsoil_depth_m = cfg%rsoil_depth_m; k_baseline = cfg%k_baseline; sand = cfg%sand; clay = cfg%clay
    soilc_init = cfg%soilc_init; strict = cfg%strict; restart = cfg%restart
    write_restart = cfg%write_restart

    open (newunit=unit, file=path, status='old', action='read', iostat=ios, iomsg=iomsg)
    if (ios /= 0) call par_abort('cannot open namelist file ''' // trim(path) // ''': ' // trim(iomsg))
    read (unit, nml=rsoil_host, iostat=ios, iomsg=iomsg)
    close (unit)
    if (ios /= 0) call par_abort('namelist file ''' // trim(path) // ''', group &rsoil_host: ' &
         // trim(iomsg))

    cfg%model_file = model_file; cfg%forcing_file = forcing_file; cfg%hist_file = hist_file
    cfg%restart_file_in = restart_file_in; cfg%restart_file_out = restart_file_out
    cfg%lstm_columns = lstm_columns; cfg%policy = policy; cfg%coupling = coupling
    cfg%on_coupler_error = on_coupler_error
    cfg%lstm_column_list = pack(lstm_column_list, lstm_column_list /= -1)
    cfg%lstm_stride = lstm_stride; cfg%lstm_offset = lstm_offset; cfg%ncol = ncol
    cfg%stop_step = stop_step; cfg%chunk_size = chunk_size; cfg%num_threads = num_threads
    cfg%lstm_fraction = lstm_fraction; cfg%rsoil_depth_m = rsoil_depth_m
    cfg%k_baseline = k_baseline; cfg%sand = sand; cfg%clay = clay; cfg%soilc_init = soilc_init
    cfg%strict = strict; cfg%restart = restart; cfg%write_restart = write_restart
    call host_check_config(cfg)
  end subroutine host_read_namelist

  subroutine host_check_config(cfg)
    type(host_config), intent(in) :: cfg
    call one_of('lstm_columns', cfg%lstm_columns, [character(len=16) :: 'all', 'none', 'list', &
         'stride', 'fraction'])
    call one_of('policy', cfg%policy, [character(len=16) :: 'lagged', 'persistence', 'supplied'])
    call one_of('coupling', cfg%coupling, [character(len=16) :: 'flux', 'scalar'])
    call one_of('on_coupler_error', cfg%on_coupler_error, [character(len=16) :: 'stop', 'q10'])
    call required('forcing_file', cfg%forcing_file)
    call required('hist_file', cfg%hist_file)
    if (cfg%lstm_columns /= 'none') call required('model_file', cfg%model_file)
    if (cfg%restart) call required('restart_file_in', cfg%restart_file_in)
    if (cfg%write_restart) call required('restart_file_out', cfg%restart_file_out)
    if (cfg%lstm_columns == 'list' .and. size(cfg%lstm_column_list) == 0) call bad('lstm_column_list', &
         'is empty but lstm_columns = ''list''')
    if (any(cfg%lstm_column_list < 1)) call bad('lstm_column_list', 'has a column id < 1')
    if (cfg%lstm_stride < 1) call bad('lstm_stride', 'must be >= 1')
    if (cfg%lstm_offset < 1) call bad('lstm_offset', 'must be >= 1')
    if (.not. (cfg%lstm_fraction >= 0 .and. cfg%lstm_fraction <= 1)) call bad('lstm_fraction', &
         'must be in [0, 1]')
    if (cfg%ncol == 0 .or. cfg%ncol < -1) call bad('ncol', 'must be >= 1 (or -1: all forcing columns)')
    if (cfg%stop_step == 0 .or. cfg%stop_step < -1) call bad('stop_step', &
         'must be >= 1 (or -1: the last forcing step)')
    if (cfg%chunk_size < 0) call bad('chunk_size', 'must be >= 0')
    if (cfg%num_threads < 0) call bad('num_threads', 'must be >= 0')
    if (.not. (cfg%rsoil_depth_m > 0)) call bad('rsoil_depth_m', 'must be > 0 [m]')
    if (.not. (cfg%k_baseline >= 0)) call bad('k_baseline', 'must be >= 0 [umol m-2 s-1]')
    if (.not. (cfg%sand >= 0 .and. cfg%sand <= 100)) call bad('sand', 'must be in [0, 100] [%]')
    if (.not. (cfg%clay >= 0 .and. cfg%clay <= 100)) call bad('clay', 'must be in [0, 100] [%]')
  end subroutine host_check_config

  subroutine one_of(key, value, allowed)
    character(len=*), intent(in) :: key, value, allowed(:)
    character(len=:), allocatable :: list
    integer :: i
    if (any(allowed == value)) return
    list = trim(allowed(1))
    do i = 2, size(allowed)
       list = list // ', ' // trim(allowed(i))
    end do
    call bad(key, '= ''' // trim(value) // ''' is not one of ' // list)
  end subroutine one_of

  subroutine required(key, value)
    character(len=*), intent(in) :: key, value
    if (len_trim(value) == 0) call bad(key, 'is required')
  end subroutine required

  subroutine bad(key, what)
    character(len=*), intent(in) :: key, what
    call par_abort('namelist &rsoil_host: ' // key // ' ' // what)
  end subroutine bad

end module host_namelist_mod
