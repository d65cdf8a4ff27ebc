!> Forcing reader: per-column drivers from a NetCDF file in CLM history names and units
!> (`TSOI` K on levgrnd, `H2OSOI` mm3/mm3 on levsoi, `RAIN` mm/s, CLM time variables), read through
!> netCDF-Fortran one time step (or window) and this rank's columns at a time, and interpolated
!> linearly in depth to the respiration model's depth. Values >= 1e35 (CLM's spval) become NaN.
module host_forcing_mod
  use, intrinsic :: iso_fortran_env, only: real64
  use, intrinsic :: ieee_arithmetic, only: ieee_value, ieee_quiet_nan
  use netcdf
  use host_parallel_mod, only: par_abort
  implicit none
  private
  public :: forcing_t, forcing_open, forcing_close, forcing_profile, forcing_at_depth, nc_check

  integer, parameter :: r8 = real64

  type :: forcing_t
     character(len=:), allocatable :: path, time_units, calendar, site
     integer :: ncid = -1, ntime = 0, ncol = 0, nlevgrnd = 0, nlevsoi = 0
     integer :: id_tsoi, id_h2osoi, id_rain
     real(r8), allocatable :: levgrnd(:), time(:), time_bounds(:, :)
     integer, allocatable :: mcdate(:), mcsec(:)
     real(r8) :: dtime = 0   ! step length [s], from time_bounds
     ! linear interpolation to the model depth: level k and weight w of level k+1, per level set
     integer :: kg = 1, ks = 1
     real(r8) :: wg = 0, ws = 0
  end type forcing_t

contains

  !> Open `path`, check variables, units and dimensions, read the time axis and set up the
  !> interpolation to depth_m [m]. Any problem stops the run with one line naming it.
  subroutine forcing_open(f, path, depth_m)
    type(forcing_t), intent(out) :: f
    character(len=*), intent(in) :: path
    real(r8), intent(in) :: depth_m
    integer :: id, dimid
    real(r8), allocatable :: levsoi(:)
    f%path = trim(path)
    call nc_check(nf90_open(f%path, nf90_nowrite, f%ncid), 'forcing file ''' // f%path // '''')
    f%id_tsoi = var_on(f, 'TSOI', 'K', 'soil temperature [K] on (column, levgrnd, time)', &
         [character(len=8) :: 'column', 'levgrnd', 'time'])
    f%id_h2osoi = var_on(f, 'H2OSOI', 'mm3/mm3', 'volumetric soil water [mm3/mm3] on (column, levsoi, time)', &
         [character(len=8) :: 'column', 'levsoi', 'time'])
    f%id_rain = var_on(f, 'RAIN', 'mm/s', 'rain [mm/s] on (column, time)', &
         [character(len=8) :: 'column', 'time'])
    f%ntime = dim_len(f, 'time')
    f%ncol = dim_len(f, 'column')
    f%nlevgrnd = dim_len(f, 'levgrnd')
    f%nlevsoi = dim_len(f, 'levsoi')
    if (f%ntime < 1) call par_abort('forcing file ''' // f%path // ''' has no time steps')
    allocate(f%levgrnd(f%nlevgrnd), levsoi(f%nlevsoi), f%time(f%ntime), f%time_bounds(2, f%ntime), &
         f%mcdate(f%ntime), f%mcsec(f%ntime))
    call read_var(f, 'levgrnd', f%levgrnd)
    call read_var(f, 'levsoi', levsoi)
    call read_var(f, 'time', f%time)
    id = var_id(f, 'time_bounds', 'time-step bounds [days] on (hist_interval, time)')
    call nc_check(nf90_get_var(f%ncid, id, f%time_bounds), f%path // ': time_bounds')
    id = var_id(f, 'mcdate', 'current date YYYYMMDD on (time)')
    call nc_check(nf90_get_var(f%ncid, id, f%mcdate), f%path // ': mcdate')
    id = var_id(f, 'mcsec', 'current seconds of the day on (time)')
    call nc_check(nf90_get_var(f%ncid, id, f%mcsec), f%path // ': mcsec')
    id = var_id(f, 'time', 'time [days since ...]')
    f%time_units = text_att(f, id, 'units')
    f%calendar = text_att(f, id, 'calendar')
    f%site = text_att(f, nf90_global, 'site')
    ! one step length for the whole file, to the millisecond (days are not exact in binary)
    f%dtime = real(nint((f%time_bounds(2, 1) - f%time_bounds(1, 1)) * 86400000._r8), r8) / 1000._r8
    if (any(abs((f%time_bounds(2, :) - f%time_bounds(1, :)) * 86400._r8 - f%dtime) > 1e-3_r8)) &
         call par_abort('forcing file ''' // f%path // ''': time steps of different lengths')
    call bracket(f, f%levgrnd, depth_m, 'levgrnd', f%kg, f%wg)
    call bracket(f, levsoi, depth_m, 'levsoi', f%ks, f%ws)
    if (nf90_inq_dimid(f%ncid, 'hist_interval', dimid) /= nf90_noerr) &
         call par_abort('forcing file ''' // f%path // ''': no dimension ''hist_interval''')
  end subroutine forcing_open

  subroutine forcing_close(f)
    type(forcing_t), intent(inout) :: f
    if (f%ncid >= 0) call nc_check(nf90_close(f%ncid), f%path)
    f%ncid = -1
  end subroutine forcing_close

  !> TSOI profile [K] of columns begc..begc+n-1 at time step t: prof(n, nlevgrnd).
  subroutine forcing_profile(f, t, begc, prof)
    type(forcing_t), intent(in) :: f
    integer, intent(in) :: t, begc
    real(r8), intent(out) :: prof(:, :)
    call nc_check(nf90_get_var(f%ncid, f%id_tsoi, prof, start=[begc, 1, t], &
         count=[size(prof, 1), f%nlevgrnd, 1]), f%path // ': TSOI')
    call spval_to_nan(prof)
  end subroutine forcing_profile

  !> Driver `name` ('TSOI' [K], 'H2OSOI' [mm3/mm3] at the model depth, or 'RAIN' [mm/s]) of columns
  !> begc..begc+n-1 for time steps t0..t0+nt-1: x(n, nt); steps past the file's end are NaN.
  subroutine forcing_at_depth(f, name, t0, begc, x)
    type(forcing_t), intent(in) :: f
    character(len=*), intent(in) :: name
    integer, intent(in) :: t0, begc
    real(r8), intent(out) :: x(:, :)
    real(r8), allocatable :: lev(:, :, :)
    integer :: n, nt
    n = size(x, 1)
    nt = max(0, min(size(x, 2), f%ntime - t0 + 1))
    x = ieee_value(0._r8, ieee_quiet_nan)
    if (nt == 0) return
    select case (name)
    case ('TSOI')
       allocate(lev(n, 2, nt))
       call nc_check(nf90_get_var(f%ncid, f%id_tsoi, lev, start=[begc, f%kg, t0], &
            count=[n, 2, nt]), f%path // ': TSOI')
       call spval_to_nan(lev)
       x(:, 1:nt) = interp(lev, f%wg)
    case ('H2OSOI')
       allocate(lev(n, 2, nt))
       call nc_check(nf90_get_var(f%ncid, f%id_h2osoi, lev, start=[begc, f%ks, t0], &
            count=[n, 2, nt]), f%path // ': H2OSOI')
       call spval_to_nan(lev)
       x(:, 1:nt) = interp(lev, f%ws)
    case ('RAIN')
       call nc_check(nf90_get_var(f%ncid, f%id_rain, x(:, 1:nt), start=[begc, t0], count=[n, nt]), &
            f%path // ': RAIN')
       call spval_to_nan(x)
    case default
       call par_abort('forcing_at_depth: unknown variable ' // name)
    end select
  end subroutine forcing_at_depth

  ! value at the model depth from the two bracketing levels; a depth on a node picks it exactly
  pure function interp(lev, w) result(x)
    real(r8), intent(in) :: lev(:, :, :), w
    real(r8) :: x(size(lev, 1), size(lev, 3))
    if (w == 0) then
       x = lev(:, 1, :)
    else if (w == 1) then
       x = lev(:, 2, :)
    else
       x = lev(:, 1, :) + w * (lev(:, 2, :) - lev(:, 1, :))
    end if
  end function interp

  ! levels k, k+1 around depth_m (k+1 clipped to the last level when depth_m is the deepest node)
  subroutine bracket(f, z, depth_m, name, k, w)
    type(forcing_t), intent(in) :: f
    real(r8), intent(in) :: z(:), depth_m
    character(len=*), intent(in) :: name
    integer, intent(out) :: k
    real(r8), intent(out) :: w
    character(len=64) :: d
    integer :: i
    write (d, '(g0.6)') depth_m
    if (size(z) < 2) call par_abort('forcing file ''' // f%path // ''': ' // name // &
         ' needs at least 2 levels')
    if (depth_m < z(1) .or. depth_m > z(size(z))) call par_abort('forcing file ''' // f%path // &
         ''': rsoil_depth_m = ' // trim(d) // ' m lies outside the ' // name // ' node depths')
    k = size(z) - 1
    do i = 1, size(z) - 1
       if (depth_m < z(i + 1)) then
          k = i
          exit
       end if
    end do
    w = (depth_m - z(k)) / (z(k + 1) - z(k))
  end subroutine bracket

  elemental subroutine spval_to_nan(x)
    real(r8), intent(inout) :: x
    if (abs(x) >= 1e35_r8) x = ieee_value(0._r8, ieee_quiet_nan)
  end subroutine spval_to_nan

  integer function var_id(f, name, what)
    type(forcing_t), intent(in) :: f
    character(len=*), intent(in) :: name, what
    if (nf90_inq_varid(f%ncid, name, var_id) /= nf90_noerr) call par_abort('forcing file ''' // &
         f%path // ''' has no variable ''' // name // ''' (' // what // ')')
  end function var_id

  ! id of a driver variable, after checking its units and its dimensions (Fortran order)
  integer function var_on(f, name, units, what, dims)
    type(forcing_t), intent(in) :: f
    character(len=*), intent(in) :: name, units, what, dims(:)
    integer :: ndims, i
    integer, allocatable :: dimids(:)
    character(len=nf90_max_name) :: dname
    character(len=:), allocatable :: u
    var_on = var_id(f, name, what)
    u = text_att(f, var_on, 'units')
    if (u /= units .and. .not. (units == 'mm3/mm3' .and. u == 'm3/m3')) call par_abort( &
         'forcing file ''' // f%path // ''': ' // name // ' has units ''' // u // '''; expected ''' &
         // units // '''')
    call nc_check(nf90_inquire_variable(f%ncid, var_on, ndims=ndims), f%path // ': ' // name)
    allocate(dimids(ndims))
    call nc_check(nf90_inquire_variable(f%ncid, var_on, dimids=dimids), f%path // ': ' // name)
    do i = 1, ndims
       call nc_check(nf90_inquire_dimension(f%ncid, dimids(i), name=dname), f%path)
       if (ndims /= size(dims) .or. dname /= dims(min(i, size(dims)))) call par_abort( &
            'forcing file ''' // f%path // ''': ' // name // ' must be ' // what)
    end do
  end function var_on

  integer function dim_len(f, name)
    type(forcing_t), intent(in) :: f
    character(len=*), intent(in) :: name
    integer :: dimid
    if (nf90_inq_dimid(f%ncid, name, dimid) /= nf90_noerr) call par_abort('forcing file ''' // &
         f%path // ''' has no dimension ''' // name // '''')
    call nc_check(nf90_inquire_dimension(f%ncid, dimid, len=dim_len), f%path // ': ' // name)
  end function dim_len

  subroutine read_var(f, name, x)
    type(forcing_t), intent(in) :: f
    character(len=*), intent(in) :: name
    real(r8), intent(out) :: x(:)
    call nc_check(nf90_get_var(f%ncid, var_id(f, name, 'coordinate'), x), f%path // ': ' // name)
  end subroutine read_var

  function text_att(f, id, name) result(s)
    type(forcing_t), intent(in) :: f
    integer, intent(in) :: id
    character(len=*), intent(in) :: name
    character(len=:), allocatable :: s
    integer :: n
    if (nf90_inquire_attribute(f%ncid, id, name, len=n) /= nf90_noerr) then
       s = ''
       return
    end if
    allocate(character(len=n) :: s)
    call nc_check(nf90_get_att(f%ncid, id, name, s), f%path // ': attribute ' // name)
  end function text_att

  !> Stop with the netCDF message and what was being done, unless status is nf90_noerr.
  subroutine nc_check(status, what)
    integer, intent(in) :: status
    character(len=*), intent(in) :: what
    if (status /= nf90_noerr) call par_abort(what // ': ' // trim(nf90_strerror(status)))
  end subroutine nc_check

end module host_forcing_mod
