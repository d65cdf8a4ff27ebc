!> CLM-style history file (one record per time step, `hist_dov2xy = .false.` column layout),
!> written by rank 0 from fields gathered over all ranks. Fluxes in gC m-2 s-1 like CLM's `HR`/`SR`;
!> time variables copied from the forcing (`time`, `time_bounds`, `mcdate`, `mcsec`: END of step).
!> Double precision (CLM's `hist_ndens = 1`), missing values 1e36 (CLM's spval).
module host_history_mod
  use, intrinsic :: iso_fortran_env, only: real64
  use, intrinsic :: ieee_arithmetic, only: ieee_is_finite
  use netcdf
  use host_forcing_mod, only: forcing_t, nc_check
  implicit none
  private
  public :: hist_t, hist_create, hist_write, hist_close

  integer, parameter :: r8 = real64
  real(r8), parameter :: spval = 1.0e36_r8

  !> Column fields of a history record, in this order in the `fields(ncol, NFIELD)` array.
  integer, parameter, public :: F_HR = 1, F_SR = 2, F_HR_Q10 = 3, F_RSC_RSOIL = 4, &
       F_RSC_SCALAR = 5, F_T_SCALAR = 6, F_W_SCALAR = 7, F_TSOI_RSC = 8, F_H2OSOI_RSC = 9, &
       F_RAIN = 10, F_TOTSOMC = 11, NFIELD = 11
  character(len=*), parameter :: names(NFIELD) = [character(len=12) :: 'HR', 'SR', 'HR_Q10', &
       'RSC_RSOIL', 'RSC_SCALAR', 'T_SCALAR', 'W_SCALAR', 'TSOI_RSC', 'H2OSOI_RSC', 'RAIN', 'TOTSOMC']
  character(len=*), parameter :: units(NFIELD) = [character(len=10) :: 'gC/m^2/s', 'gC/m^2/s', &
       'gC/m^2/s', 'gC/m^2/s', '1', '1', '1', 'K', 'mm3/mm3', 'mm/s', 'gC/m^2']
  character(len=*), parameter :: long_names(NFIELD) = [character(len=120) :: &
       'total heterotrophic respiration (CLM structure, or the rsoil_couple LSTM where swapped in)', &
       'total soil respiration (HR + root respiration; this host has no roots, so SR = HR)', &
       'heterotrophic respiration of the CLM-structure Q10 baseline', &
       'soil respiration returned by rsoil_couple (LSTM, or its own Q10 fallback)', &
       'rsoil_couple respiration scalar (LSTM / its Q10 reference; 1 on fallback)', &
       'CLM5 temperature scalar of decomposition at the respiration depth', &
       'CLM5 moisture scalar of decomposition at the respiration depth', &
       'soil temperature at the respiration depth (linear in depth between levgrnd nodes)', &
       'volumetric soil water at the respiration depth (linear in depth between levsoi nodes)', &
       'atmospheric rain', &
       'soil organic carbon (one pool, decreased by HR; carbon mass balance)']

  type :: hist_t
     integer :: ncid = -1, rec = 0, id_time, id_tb, id_mcdate, id_mcsec, id_tsoi, id_status
     integer :: ids(NFIELD)
     character(len=:), allocatable :: path
  end type hist_t

contains

  !> Create the history file (rank 0 only). mask(ncol): 1 where the column is meant to use the LSTM.
  !> `attrs` are (name, value) pairs of global text attributes describing the run.
  subroutine hist_create(h, path, f, ncol, mask, attrs)
    type(hist_t), intent(out) :: h
    character(len=*), intent(in) :: path
    type(forcing_t), intent(in) :: f
    integer, intent(in) :: ncol, mask(:)
    character(len=*), intent(in) :: attrs(:, :)
    integer :: d_col, d_lev, d_time, d_hi, id_lev, id_mask, i
    h%path = trim(path)
    call nc_check(nf90_create(h%path, ior(nf90_clobber, nf90_netcdf4), h%ncid), &
         'history file ''' // h%path // '''')
    call ok(nf90_def_dim(h%ncid, 'column', ncol, d_col))
    call ok(nf90_def_dim(h%ncid, 'levgrnd', f%nlevgrnd, d_lev))
    call ok(nf90_def_dim(h%ncid, 'hist_interval', 2, d_hi))
    call ok(nf90_def_dim(h%ncid, 'time', nf90_unlimited, d_time))
    call ok(nf90_def_var(h%ncid, 'levgrnd', nf90_double, [d_lev], id_lev))
    call text(id_lev, 'long_name', 'coordinate ground levels'); call text(id_lev, 'units', 'm')
    call ok(nf90_def_var(h%ncid, 'time', nf90_double, [d_time], h%id_time))
    call text(h%id_time, 'long_name', 'time'); call text(h%id_time, 'units', f%time_units)
    call text(h%id_time, 'calendar', f%calendar); call text(h%id_time, 'bounds', 'time_bounds')
    call ok(nf90_def_var(h%ncid, 'time_bounds', nf90_double, [d_hi, d_time], h%id_tb))
    call text(h%id_tb, 'long_name', 'history time interval endpoints')
    call ok(nf90_def_var(h%ncid, 'mcdate', nf90_int, [d_time], h%id_mcdate))
    call text(h%id_mcdate, 'long_name', 'current date (YYYYMMDD)')
    call ok(nf90_def_var(h%ncid, 'mcsec', nf90_int, [d_time], h%id_mcsec))
    call text(h%id_mcsec, 'long_name', 'current seconds of current date'); call text(h%id_mcsec, 'units', 's')
    call ok(nf90_def_var(h%ncid, 'RSC_MASK', nf90_int, [d_col], id_mask))
    call text(id_mask, 'long_name', '1: column set to use the rsoil_couple LSTM, 0: CLM-structure Q10')
    do i = 1, NFIELD
       call ok(nf90_def_var(h%ncid, trim(names(i)), nf90_double, [d_col, d_time], h%ids(i)))
       call text(h%ids(i), 'long_name', trim(long_names(i)))
       call text(h%ids(i), 'units', trim(units(i)))
       call text(h%ids(i), 'cell_methods', 'time: mean')
       call ok(nf90_put_att(h%ncid, h%ids(i), '_FillValue', spval))
       call ok(nf90_put_att(h%ncid, h%ids(i), 'missing_value', spval))
    end do
    call ok(nf90_def_var(h%ncid, 'TSOI', nf90_double, [d_col, d_lev, d_time], h%id_tsoi))
    call text(h%id_tsoi, 'long_name', 'soil temperature (natural vegetated)')
    call text(h%id_tsoi, 'units', 'K'); call text(h%id_tsoi, 'cell_methods', 'time: mean')
    call ok(nf90_put_att(h%ncid, h%id_tsoi, '_FillValue', spval))
    call ok(nf90_def_var(h%ncid, 'RSC_STATUS', nf90_int, [d_col, d_time], h%id_status))
    call text(h%id_status, 'long_name', 'rsoil_couple per-column status: 0 active, 1 extrapolating, ' // &
         '2 spin-up, 3 missing driver, 4 impossible driver, 5 masked (Q10), ' // &
         '6 extrapolation fallback, 7 bad network output (Q10), -1 no coupler (Q10 after a coupler error)')
    do i = 1, size(attrs, 2)
       call ok(nf90_put_att(h%ncid, nf90_global, trim(attrs(1, i)), trim(attrs(2, i))))
    end do
    call ok(nf90_enddef(h%ncid))
    call ok(nf90_put_var(h%ncid, id_lev, f%levgrnd))
    call ok(nf90_put_var(h%ncid, id_mask, mask))
  contains
    subroutine text(id, name, value)
      integer, intent(in) :: id
      character(len=*), intent(in) :: name, value
      call ok(nf90_put_att(h%ncid, id, name, value))
    end subroutine text
    subroutine ok(status)
      integer, intent(in) :: status
      call nc_check(status, 'history file ''' // h%path // '''')
    end subroutine ok
  end subroutine hist_create

  !> Append one record: forcing step t's time variables, fields(ncol, NFIELD), tsoi(ncol, nlevgrnd)
  !> [K] and status(ncol). Non-finite values are written as spval.
  subroutine hist_write(h, f, t, fields, tsoi, status)
    type(hist_t), intent(inout) :: h
    type(forcing_t), intent(in) :: f
    integer, intent(in) :: t, status(:)
    real(r8), intent(in) :: fields(:, :), tsoi(:, :)
    integer :: i, r
    h%rec = h%rec + 1
    r = h%rec
    call ok(nf90_put_var(h%ncid, h%id_time, f%time(t:t), start=[r]))
    call ok(nf90_put_var(h%ncid, h%id_tb, f%time_bounds(:, t:t), start=[1, r]))
    call ok(nf90_put_var(h%ncid, h%id_mcdate, f%mcdate(t:t), start=[r]))
    call ok(nf90_put_var(h%ncid, h%id_mcsec, f%mcsec(t:t), start=[r]))
    do i = 1, NFIELD
       call ok(nf90_put_var(h%ncid, h%ids(i), finite_or_spval(fields(:, i)), start=[1, r]))
    end do
    call ok(nf90_put_var(h%ncid, h%id_tsoi, finite_or_spval(tsoi), start=[1, 1, r]))
    call ok(nf90_put_var(h%ncid, h%id_status, status, start=[1, r]))
  contains
    subroutine ok(status)
      integer, intent(in) :: status
      call nc_check(status, 'history file ''' // h%path // '''')
    end subroutine ok
  end subroutine hist_write

  subroutine hist_close(h)
    type(hist_t), intent(inout) :: h
    if (h%ncid >= 0) call nc_check(nf90_close(h%ncid), 'history file ''' // h%path // '''')
    h%ncid = -1
  end subroutine hist_close

  elemental real(r8) function finite_or_spval(x)
    real(r8), intent(in) :: x
    finite_or_spval = merge(x, spval, ieee_is_finite(x))
  end function finite_or_spval

end module host_history_mod
