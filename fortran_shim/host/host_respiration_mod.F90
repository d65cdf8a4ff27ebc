!> CLM5-structure heterotrophic respiration of one soil layer (docs/clm_baseline.md), the host's
!> baseline that the LSTM replaces column by column. Same formula as `rsoil_couple.q10.clm_structure`.
module host_respiration_mod
  use, intrinsic :: iso_fortran_env, only: real64
  use, intrinsic :: ieee_arithmetic, only: ieee_is_nan, ieee_value, ieee_quiet_nan
  implicit none
  private
  public :: clm_t_scalar, clm_w_scalar, umol_to_gc

  integer, parameter :: r8 = real64
  real(r8), parameter :: tfrz = 273.15_r8          ! freezing point [K]
  real(r8), parameter :: q10 = 1.5_r8              ! CLM5 q10_mr [-]
  real(r8), parameter :: froz_q10 = 1.5_r8         ! CLM5 froz_q10 [-]
  real(r8), parameter :: minpsi = -2.0_r8          ! CLM5 minpsi_hr [MPa]
  real(r8), parameter :: maxpsi = -0.002_r8        ! CLM5 maxpsi_hr [MPa]
  real(r8), parameter, public :: gc_per_umol_co2 = 12.011e-6_r8  ! [gC m-2 s-1 per umol CO2 m-2 s-1]

contains

  !> CLM5 temperature scalar [-] of soil temperature tsoil_k [K] (Q10 = 1.5 about 25 °C; below
  !> freezing froz_q10 about 0 °C). NaN (missing) where tsoil_k is NaN.
  elemental real(r8) function clm_t_scalar(tsoil_k)
    real(r8), intent(in) :: tsoil_k
    if (ieee_is_nan(tsoil_k)) then
       clm_t_scalar = ieee_value(0._r8, ieee_quiet_nan)
    else if (tsoil_k >= tfrz) then
       clm_t_scalar = q10 ** ((tsoil_k - (tfrz + 25._r8)) / 10._r8)
    else
       clm_t_scalar = q10 ** (-25._r8 / 10._r8) * froz_q10 ** ((tsoil_k - tfrz) / 10._r8)
    end if
  end function clm_t_scalar

  !> CLM5 moisture scalar [-] of volumetric water swc [m3 m-3] through Clapp–Hornberger retention
  !> with Cosby et al. (1984) pedotransfer of sand and clay [%]. NaN (missing) where swc is NaN:
  !> MIN/MAX below would turn a NaN into a valid-looking value (issue 10 / F16: missing H2OSOI gave
  !> W_SCALAR = 0 and HR = 0); the same rule as rsoil_couple.q10.clm_w_scalar.
  elemental real(r8) function clm_w_scalar(swc, sand, clay)
    real(r8), intent(in) :: swc, sand, clay
    real(r8) :: watsat, bsw, sucsat, s, psi
    if (ieee_is_nan(swc)) then
       clm_w_scalar = ieee_value(0._r8, ieee_quiet_nan)
       return
    end if
    watsat = 0.489_r8 - 0.00126_r8 * sand
    bsw = 2.91_r8 + 0.159_r8 * clay
    sucsat = 10._r8 * 10._r8 ** (1.88_r8 - 0.0131_r8 * sand)
    s = min(max(swc / watsat, 0.01_r8), 1.0_r8)
    psi = min(-9.8e-6_r8 * sucsat * s ** (-bsw), maxpsi)
    if (psi > minpsi) then
       clm_w_scalar = log(minpsi / psi) / log(minpsi / maxpsi)
    else
       clm_w_scalar = 0._r8
    end if
  end function clm_w_scalar

  !> µmol CO2 m-2 s-1 -> gC m-2 s-1.
  elemental real(r8) function umol_to_gc(x)
    real(r8), intent(in) :: x
    umol_to_gc = x * gc_per_umol_co2
  end function umol_to_gc

end module host_respiration_mod
