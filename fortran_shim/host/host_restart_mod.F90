!> Restart file: the host's state (last completed step, its time, the soil carbon pool per column)
!> and each rank's rsoil_couple state blob (opaque bytes from `rsoil_coupler%get_state`).
!> Written by rank 0 from gathered data, read by every rank for its own columns and blob. The coupler
!> state is per rank, so a restart needs the same number of ranks (checked).
module host_restart_mod
  use, intrinsic :: iso_fortran_env, only: real64, int8
  use, intrinsic :: ieee_arithmetic, only: ieee_is_finite
  use netcdf
  use host_forcing_mod, only: nc_check
  use host_parallel_mod, only: par_abort, nranks, myrank
  implicit none
  private
  public :: restart_write, restart_read

  integer, parameter :: r8 = real64

contains

  !> Write (rank 0): nstep completed steps ending at `time` [days, forcing units], totsomc(ncol)
  !> [gC m-2], blobs(maxlen, nranks) with lengths nbytes(nranks) [bytes]; `attrs` (name, value).
  subroutine restart_write(path, nstep, time, totsomc, blobs, nbytes, attrs)
    character(len=*), intent(in) :: path
    integer, intent(in) :: nstep, nbytes(:)
    real(r8), intent(in) :: time, totsomc(:)
    integer(int8), intent(in) :: blobs(:, :)
    character(len=*), intent(in) :: attrs(:, :)
    integer :: ncid, d_col, d_rank, d_byte, id_nstep, id_time, id_c, id_blob, id_n, i
    call ok(nf90_create(trim(path), ior(nf90_clobber, nf90_netcdf4), ncid))
    call ok(nf90_def_dim(ncid, 'column', size(totsomc), d_col))
    call ok(nf90_def_dim(ncid, 'rank', size(nbytes), d_rank))
    call ok(nf90_def_dim(ncid, 'state_byte', size(blobs, 1), d_byte))
    call ok(nf90_def_var(ncid, 'nstep', nf90_int, id_nstep))
    call ok(nf90_put_att(ncid, id_nstep, 'long_name', 'number of completed time steps (forcing index)'))
    call ok(nf90_def_var(ncid, 'time', nf90_double, id_time))
    call ok(nf90_put_att(ncid, id_time, 'long_name', 'end of the last completed step [forcing time units]'))
    call ok(nf90_def_var(ncid, 'TOTSOMC', nf90_double, [d_col], id_c))
    call ok(nf90_put_att(ncid, id_c, 'units', 'gC/m^2'))
    call ok(nf90_def_var(ncid, 'rsc_state_nbytes', nf90_int, [d_rank], id_n))
    call ok(nf90_put_att(ncid, id_n, 'long_name', 'length of each rank''s rsoil_couple state (0: no coupler)'))
    call ok(nf90_def_var(ncid, 'rsc_state', nf90_byte, [d_byte, d_rank], id_blob))
    call ok(nf90_put_att(ncid, id_blob, 'long_name', 'rsoil_couple coupler state blob per rank (opaque)'))
    do i = 1, size(attrs, 2)
       call ok(nf90_put_att(ncid, nf90_global, trim(attrs(1, i)), trim(attrs(2, i))))
    end do
    call ok(nf90_enddef(ncid))
    call ok(nf90_put_var(ncid, id_nstep, nstep))
    call ok(nf90_put_var(ncid, id_time, time))
    call ok(nf90_put_var(ncid, id_c, totsomc))
    call ok(nf90_put_var(ncid, id_n, nbytes))
    call ok(nf90_put_var(ncid, id_blob, blobs))
    call ok(nf90_close(ncid))
  contains
    subroutine ok(status)
      integer, intent(in) :: status
      call nc_check(status, 'restart file ''' // trim(path) // '''')
    end subroutine ok
  end subroutine restart_write

  !> Read (every rank): nstep, time, this rank's totsomc(begc:begc+size-1) and its blob (size 0 if
  !> the file holds none). Stops with one line naming the file and the variable if the file does not
  !> match this run or holds an impossible value (issue 10 / F15: a restart is validated, not
  !> trusted): TOTSOMC not finite, missing (>= 1e35) or negative; time not finite; a blob length
  !> outside 0..state_byte. The caller checks nstep against the time axis and against the coupler
  !> state's steps_taken (clm_like_host).
  subroutine restart_read(path, ncol, begc, nstep, time, totsomc, blob)
    character(len=*), intent(in) :: path
    integer, intent(in) :: ncol, begc
    integer, intent(out) :: nstep
    real(r8), intent(out) :: time, totsomc(:)
    integer(int8), allocatable, intent(out) :: blob(:)
    integer :: ncid, n, nr, id, nbyte, c, nbad
    integer, allocatable :: nbytes(:)
    character(len=32) :: a, b
    character(len=64) :: v
    call ok(nf90_open(trim(path), nf90_nowrite, ncid))
    n = dim_len(ncid, 'column', path)
    if (n /= ncol) then
       write (a, '(i0)') n; write (b, '(i0)') ncol
       call par_abort('restart file ''' // trim(path) // ''' has ' // trim(a) // &
            ' columns; this run has ' // trim(b))
    end if
    nr = dim_len(ncid, 'rank', path)
    allocate(nbytes(nr))
    call ok(nf90_inq_varid(ncid, 'rsc_state_nbytes', id))
    call ok(nf90_get_var(ncid, id, nbytes))
    if (nr /= nranks .and. any(nbytes > 0)) then
       write (a, '(i0)') nr; write (b, '(i0)') nranks
       call par_abort('restart file ''' // trim(path) // ''' holds the coupler state of ' // trim(a) &
            // ' MPI ranks; this run has ' // trim(b) // ' (restart with the same number of ranks)')
    end if
    nbyte = dim_len(ncid, 'state_byte', path)
    do c = 1, nr
       if (nbytes(c) < 0 .or. nbytes(c) > nbyte) then
          write (a, '(i0)') nbytes(c); write (b, '(i0)') nbyte
          write (v, '(i0)') c
          call par_abort('restart file ''' // trim(path) // ''': rsc_state_nbytes(rank ' // trim(v) // &
               ') = ' // trim(a) // ' lies outside 0..' // trim(b) // ' (the state_byte dimension)')
       end if
    end do
    call ok(nf90_inq_varid(ncid, 'nstep', id)); call ok(nf90_get_var(ncid, id, nstep))
    call ok(nf90_inq_varid(ncid, 'time', id)); call ok(nf90_get_var(ncid, id, time))
    if (.not. ieee_is_finite(time) .or. abs(time) >= 1e35_r8) then
       write (v, '(g0)') time
       call par_abort('restart file ''' // trim(path) // ''': time = ' // trim(v) // ' is not a valid time')
    end if
    call ok(nf90_inq_varid(ncid, 'TOTSOMC', id))
    call ok(nf90_get_var(ncid, id, totsomc, start=[begc], count=[size(totsomc)]))
    ! every carbon pool finite, not CLM's missing value, and >= 0: a NaN pool would otherwise run
    ! on and be written as 1e36 every step with exit 0
    nbad = count(.not. pool_ok(totsomc))
    if (nbad > 0) then
       c = findloc(pool_ok(totsomc), .false., dim=1)
       write (v, '(es12.5)') totsomc(c)
       v = adjustl(v)
       write (a, '(i0)') begc + c - 1
       write (b, '(i0)') nbad
       call par_abort('restart file ''' // trim(path) // ''': TOTSOMC(column ' // trim(a) // ') = ' // &
            trim(v) // ' [gC/m^2] is not a finite carbon pool >= 0 (NaN, missing 1e36 or negative; ' // trim(b) // &
            ' such column(s) on this rank)')
    end if
    n = 0
    if (nr == nranks) n = nbytes(myrank + 1)
    allocate(blob(n))
    if (n > 0) then
       call ok(nf90_inq_varid(ncid, 'rsc_state', id))
       call ok(nf90_get_var(ncid, id, blob, start=[1, myrank + 1], count=[n, 1]))
    end if
    call ok(nf90_close(ncid))
  contains
    subroutine ok(status)
      integer, intent(in) :: status
      call nc_check(status, 'restart file ''' // trim(path) // '''')
    end subroutine ok
  end subroutine restart_read

  elemental logical function pool_ok(x)
    real(r8), intent(in) :: x
    pool_ok = ieee_is_finite(x)
    if (pool_ok) pool_ok = x >= 0 .and. x < 1e35_r8
  end function pool_ok

  integer function dim_len(ncid, name, path)
    integer, intent(in) :: ncid
    character(len=*), intent(in) :: name, path
    integer :: dimid
    call nc_check(nf90_inq_dimid(ncid, name, dimid), 'restart file ''' // trim(path) // '''')
    call nc_check(nf90_inquire_dimension(ncid, dimid, len=dim_len), 'restart file ''' // trim(path) // '''')
  end function dim_len

end module host_restart_mod
