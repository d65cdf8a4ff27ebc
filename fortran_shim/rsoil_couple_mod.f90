!> rsoil_couple_mod — Fortran 2008 interface to the rsoil_couple C API (csrc/rsoil_couple.h).
!>
!> One `rsoil_coupler` per process (per MPI rank) replaces a land model's Q10 soil respiration, column
!> by column, with a knowledge-guided LSTM. The type holds the C handle; its `final` procedure and
!> `finalize` destroy it, and destroying twice is a no-op.
!>
!> Every procedure takes optional `stat` and `errmsg`, like ALLOCATE: with `stat` present an error
!> sets `stat` to the C result code (RSC_E_*) and `errmsg` (if present) to a one-line message, and
!> the call returns; without `stat` an error stops the program (ERROR STOP) with that message.
!> On success `stat` = 0 and `errmsg` is left unchanged.
!>
!> Column arrays are the host's own contiguous `real(c_double)` arrays (CLM's `real(r8)`), passed
!> to C without copies; two-dimensional future arrays are `x(future_steps, ncol)`.
module rsoil_couple_mod
  use, intrinsic :: iso_c_binding, only: c_ptr, c_null_ptr, c_int, c_double, c_char, c_size_t, &
       c_long_long, c_null_char, c_associated, c_loc, c_int8_t
  implicit none
  private

  public :: rsoil_coupler, rsc_version, rsc_policy_code

  ! The RSC_* constants (result codes RSC_OK, RSC_E_*; per-column status codes RSC_STATUS_*,
  ! RSC_NSTATUS; future-driver policies RSC_POLICY_*), all public: generated at build time from
  ! csrc/rsoil_couple.h by cmake/RsoilFortranConstants.cmake, so they cannot drift from the C header.
  include 'rsoil_couple_constants.inc'

  integer, parameter :: msg_len = 2048

  !> A coupler for `ncol` columns. Do not copy it by assignment (both copies would hold one handle).
  type :: rsoil_coupler
     type(c_ptr) :: handle = c_null_ptr
     integer :: ncol = 0
   contains
     procedure :: init => coupler_init
     procedure :: set_mask => coupler_set_mask
     procedure :: step => coupler_step
     procedure :: info => coupler_info
     procedure :: counters => coupler_counters
     procedure :: model_id => coupler_model_id
     procedure :: rows_independent => coupler_rows_independent
     procedure :: diagnostic => coupler_diagnostic
     procedure :: state_size => coupler_state_size
     procedure :: get_state => coupler_get_state
     procedure :: put_state => coupler_put_state
     procedure :: finalize => coupler_finalize
     procedure :: initialized => coupler_initialized
     final :: coupler_final
  end type rsoil_coupler

  interface
     function c_rsc_version() bind(c, name="rsc_version") result(p)
       import :: c_ptr
       type(c_ptr) :: p
     end function c_rsc_version

     function c_rsc_last_error(buf, buflen) bind(c, name="rsc_last_error") result(n)
       import :: c_char, c_size_t, c_int
       character(kind=c_char), intent(out) :: buf(*)
       integer(c_size_t), value :: buflen
       integer(c_int) :: n
     end function c_rsc_last_error

     function c_rsc_coupler_create(model_path, ncol, policy, strict, chunk_size, num_threads, out) &
          bind(c, name="rsc_coupler_create") result(rc)
       import :: c_char, c_int, c_ptr
       character(kind=c_char), intent(in) :: model_path(*)
       integer(c_int), value :: ncol, policy, strict, chunk_size, num_threads
       type(c_ptr), intent(out) :: out
       integer(c_int) :: rc
     end function c_rsc_coupler_create

     function c_rsc_coupler_destroy(h) bind(c, name="rsc_coupler_destroy") result(rc)
       import :: c_ptr, c_int
       type(c_ptr), intent(inout) :: h
       integer(c_int) :: rc
     end function c_rsc_coupler_destroy

     function c_rsc_coupler_set_mask(h, ncol, use_model) bind(c, name="rsc_coupler_set_mask") result(rc)
       import :: c_ptr, c_int
       type(c_ptr), value :: h
       integer(c_int), value :: ncol
       integer(c_int), intent(in) :: use_model(*)
       integer(c_int) :: rc
     end function c_rsc_coupler_set_mask

     function c_rsc_coupler_step(h, ncol, tsoil_k, swc_m3m3, precip_mm_s, future_tsoil_k, &
          future_swc_m3m3, future_precip_mm_s, rsoil_umol_m2_s, rsoil_gc_m2_s, resp_scalar, status) &
          bind(c, name="rsc_coupler_step") result(rc)
       import :: c_ptr, c_int, c_double
       type(c_ptr), value :: h
       integer(c_int), value :: ncol
       real(c_double), intent(in) :: tsoil_k(*), swc_m3m3(*), precip_mm_s(*)
       type(c_ptr), value :: future_tsoil_k, future_swc_m3m3, future_precip_mm_s
       real(c_double), intent(out) :: rsoil_umol_m2_s(*), rsoil_gc_m2_s(*), resp_scalar(*)
       integer(c_int), intent(out) :: status(*)
       integer(c_int) :: rc
     end function c_rsc_coupler_step

     function c_rsc_coupler_diagnostic(h, buf, buflen, len_out) &
          bind(c, name="rsc_coupler_diagnostic") result(rc)
       import :: c_ptr, c_char, c_size_t, c_int
       type(c_ptr), value :: h
       character(kind=c_char), intent(out) :: buf(*)
       integer(c_size_t), value :: buflen
       integer(c_size_t), intent(out) :: len_out
       integer(c_int) :: rc
     end function c_rsc_coupler_diagnostic

     function c_rsc_coupler_info(h, past_steps, future_steps, step_seconds, spinup_steps, lag_steps, &
          n_future_vars, future_vars_mask, steps_taken) bind(c, name="rsc_coupler_info") result(rc)
       import :: c_ptr, c_int, c_double, c_long_long
       type(c_ptr), value :: h
       integer(c_int), intent(out) :: past_steps, future_steps, spinup_steps, lag_steps, &
            n_future_vars, future_vars_mask
       real(c_double), intent(out) :: step_seconds
       integer(c_long_long), intent(out) :: steps_taken
       integer(c_int) :: rc
     end function c_rsc_coupler_info

     function c_rsc_coupler_rows_independent(h, yes) bind(c, name="rsc_coupler_rows_independent") result(rc)
       import :: c_ptr, c_int
       type(c_ptr), value :: h
       integer(c_int), intent(out) :: yes
       integer(c_int) :: rc
     end function c_rsc_coupler_rows_independent

     function c_rsc_coupler_model_id(h, buf, buflen) bind(c, name="rsc_coupler_model_id") result(rc)
       import :: c_ptr, c_char, c_size_t, c_int
       type(c_ptr), value :: h
       character(kind=c_char), intent(out) :: buf(*)
       integer(c_size_t), value :: buflen
       integer(c_int) :: rc
     end function c_rsc_coupler_model_id

     function c_rsc_coupler_counters(h, counts) bind(c, name="rsc_coupler_counters") result(rc)
       import :: c_ptr, c_long_long, c_int
       type(c_ptr), value :: h
       integer(c_long_long), intent(out) :: counts(*)
       integer(c_int) :: rc
     end function c_rsc_coupler_counters

     function c_rsc_coupler_state_size(h, nbytes) bind(c, name="rsc_coupler_state_size") result(rc)
       import :: c_ptr, c_size_t, c_int
       type(c_ptr), value :: h
       integer(c_size_t), intent(out) :: nbytes
       integer(c_int) :: rc
     end function c_rsc_coupler_state_size

     function c_rsc_coupler_state_get(h, buf, buflen) bind(c, name="rsc_coupler_state_get") result(rc)
       import :: c_ptr, c_size_t, c_int, c_int8_t
       type(c_ptr), value :: h
       integer(c_int8_t), intent(out) :: buf(*)
       integer(c_size_t), value :: buflen
       integer(c_int) :: rc
     end function c_rsc_coupler_state_get

     function c_rsc_coupler_state_put(h, buf, buflen) bind(c, name="rsc_coupler_state_put") result(rc)
       import :: c_ptr, c_size_t, c_int, c_int8_t
       type(c_ptr), value :: h
       integer(c_int8_t), intent(in) :: buf(*)
       integer(c_size_t), value :: buflen
       integer(c_int) :: rc
     end function c_rsc_coupler_state_put
  end interface

contains

  !> The library version, e.g. "0.1.0".
  function rsc_version() result(v)
    character(len=:), allocatable :: v
    v = c_string(c_rsc_version())
  end function rsc_version

  !> RSC_POLICY_* code of a policy name ('lagged', 'persistence', 'supplied'); -1 if unknown.
  pure function rsc_policy_code(name) result(code)
    character(len=*), intent(in) :: name
    integer :: code
    select case (trim(adjustl(name)))
    case ('lagged');      code = RSC_POLICY_LAGGED
    case ('persistence'); code = RSC_POLICY_PERSISTENCE
    case ('supplied');    code = RSC_POLICY_SUPPLIED
    case default;         code = -1
    end select
  end function rsc_policy_code

  !> Create the coupler: load and validate `model_path` for `ncol` columns.
  !>   policy       RSC_POLICY_*;  strict: out-of-envelope columns fall back to Q10 (default .false.)
  !>   chunk_size   max columns per forward call, 0 = all (default 0)
  !>   num_threads  libtorch intra-op threads, PROCESS-WIDE; 0 = leave as is (default 0)
  !> Calling init on an initialized coupler destroys the old one first.
  subroutine coupler_init(self, model_path, ncol, policy, strict, chunk_size, num_threads, stat, errmsg)
    class(rsoil_coupler), intent(inout) :: self
    character(len=*), intent(in) :: model_path
    integer, intent(in) :: ncol, policy
    logical, intent(in), optional :: strict
    integer, intent(in), optional :: chunk_size, num_threads
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    integer(c_int) :: istrict, ichunk, ithreads, rc
    istrict = 0; ichunk = 0; ithreads = 0
    if (present(strict)) then
       if (strict) istrict = 1
    end if
    if (present(chunk_size)) ichunk = int(chunk_size, c_int)
    if (present(num_threads)) ithreads = int(num_threads, c_int)
    call self%finalize()
    rc = c_rsc_coupler_create(trim(model_path)//c_null_char, int(ncol, c_int), int(policy, c_int), &
         istrict, ichunk, ithreads, self%handle)
    if (rc == RSC_OK) self%ncol = ncol
    call check(rc, 'init', stat, errmsg)
  end subroutine coupler_init

  !> Choose per column: use_model(i) = .true. -> the LSTM, .false. -> Q10 (status MASKED).
  subroutine coupler_set_mask(self, use_model, stat, errmsg)
    class(rsoil_coupler), intent(inout) :: self
    logical, intent(in) :: use_model(:)
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    integer(c_int) :: imask(size(use_model))
    if (.not. handle_ok(self, 'set_mask', stat, errmsg)) return
    if (.not. shape_ok(shape(use_model), [self%ncol], 'use_model', '(ncol)', 'set_mask', stat, errmsg)) &
         return
    imask = merge(1_c_int, 0_c_int, use_model)
    call check(c_rsc_coupler_set_mask(self%handle, int(self%ncol, c_int), imask), 'set_mask', stat, errmsg)
  end subroutine coupler_set_mask

  !> Advance one time step for all columns (see rsc_coupler_step). Inputs: this step's drivers per
  !> column, tsoil_k [K], swc_m3m3 [m3 m-3], precip_mm_s [mm s-1]; with RSC_POLICY_SUPPLIED the
  !> future drivers future_*(future_steps, ncol) for the variables the model takes (info's
  !> future_vars_mask). Outputs per column: rsoil_umol_m2_s [µmol CO2 m-2 s-1], rsoil_gc_m2_s
  !> [gC m-2 s-1], resp_scalar [-] (model / Q10 reference; 1 on fallback), status (RSC_STATUS_*).
  subroutine coupler_step(self, tsoil_k, swc_m3m3, precip_mm_s, rsoil_umol_m2_s, rsoil_gc_m2_s, &
       resp_scalar, status, future_tsoil_k, future_swc_m3m3, future_precip_mm_s, stat, errmsg)
    class(rsoil_coupler), intent(inout) :: self
    real(c_double), intent(in), contiguous :: tsoil_k(:), swc_m3m3(:), precip_mm_s(:)
    real(c_double), intent(out), contiguous :: rsoil_umol_m2_s(:), rsoil_gc_m2_s(:), resp_scalar(:)
    integer(c_int), intent(out), contiguous :: status(:)
    real(c_double), intent(in), contiguous, target, optional :: future_tsoil_k(:,:), &
         future_swc_m3m3(:,:), future_precip_mm_s(:,:)
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    type(c_ptr) :: ft, fs, fp
    integer(c_int) :: ps, nfut, sp, lg, nf, fm, rc
    real(c_double) :: dt
    integer(c_long_long) :: nt
    if (.not. handle_ok(self, 'step', stat, errmsg)) return
    ! every dimension of every array against the coupler, before any pointer reaches C (which
    ! cannot see Fortran shapes and would read or write past a short array)
    if (.not. shape_ok(shape(tsoil_k), [self%ncol], 'tsoil_k', '(ncol)', 'step', stat, errmsg)) return
    if (.not. shape_ok(shape(swc_m3m3), [self%ncol], 'swc_m3m3', '(ncol)', 'step', stat, errmsg)) return
    if (.not. shape_ok(shape(precip_mm_s), [self%ncol], 'precip_mm_s', '(ncol)', 'step', stat, errmsg)) &
         return
    if (.not. shape_ok(shape(rsoil_umol_m2_s), [self%ncol], 'rsoil_umol_m2_s', '(ncol)', 'step', stat, &
         errmsg)) return
    if (.not. shape_ok(shape(rsoil_gc_m2_s), [self%ncol], 'rsoil_gc_m2_s', '(ncol)', 'step', stat, &
         errmsg)) return
    if (.not. shape_ok(shape(resp_scalar), [self%ncol], 'resp_scalar', '(ncol)', 'step', stat, errmsg)) &
         return
    if (.not. shape_ok(shape(status), [self%ncol], 'status', '(ncol)', 'step', stat, errmsg)) return
    ft = c_null_ptr; fs = c_null_ptr; fp = c_null_ptr
    if (present(future_tsoil_k) .or. present(future_swc_m3m3) .or. present(future_precip_mm_s)) then
       rc = c_rsc_coupler_info(self%handle, ps, nfut, dt, sp, lg, nf, fm, nt)
       if (rc /= RSC_OK) then
          call check(rc, 'step', stat, errmsg)
          return
       end if
       if (present(future_tsoil_k)) then
          if (.not. shape_ok(shape(future_tsoil_k), [int(nfut), self%ncol], 'future_tsoil_k', &
               '(future_steps, ncol)', 'step', stat, errmsg)) return
          ft = c_loc(future_tsoil_k)
       end if
       if (present(future_swc_m3m3)) then
          if (.not. shape_ok(shape(future_swc_m3m3), [int(nfut), self%ncol], 'future_swc_m3m3', &
               '(future_steps, ncol)', 'step', stat, errmsg)) return
          fs = c_loc(future_swc_m3m3)
       end if
       if (present(future_precip_mm_s)) then
          if (.not. shape_ok(shape(future_precip_mm_s), [int(nfut), self%ncol], 'future_precip_mm_s', &
               '(future_steps, ncol)', 'step', stat, errmsg)) return
          fp = c_loc(future_precip_mm_s)
       end if
    end if
    call check(c_rsc_coupler_step(self%handle, int(self%ncol, c_int), tsoil_k, swc_m3m3, precip_mm_s, &
         ft, fs, fp, rsoil_umol_m2_s, rsoil_gc_m2_s, resp_scalar, status), 'step', stat, errmsg)
  end subroutine coupler_step

  !> Model and setup facts (any subset): window lengths [steps], step length [s], spin-up and lag
  !> [steps], future inputs (count, bit mask: 1 tsoil, 2 swc, 4 precip), steps taken so far.
  subroutine coupler_info(self, past_steps, future_steps, step_seconds, spinup_steps, lag_steps, &
       n_future_vars, future_vars_mask, steps_taken, stat, errmsg)
    class(rsoil_coupler), intent(in) :: self
    integer, intent(out), optional :: past_steps, future_steps, spinup_steps, lag_steps, &
         n_future_vars, future_vars_mask
    real(c_double), intent(out), optional :: step_seconds
    integer(c_long_long), intent(out), optional :: steps_taken
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    integer(c_int) :: ps, fs, sp, lg, nf, fm, rc
    real(c_double) :: dt
    integer(c_long_long) :: nt
    rc = c_rsc_coupler_info(self%handle, ps, fs, dt, sp, lg, nf, fm, nt)
    if (rc == RSC_OK) then
       if (present(past_steps)) past_steps = ps
       if (present(future_steps)) future_steps = fs
       if (present(step_seconds)) step_seconds = dt
       if (present(spinup_steps)) spinup_steps = sp
       if (present(lag_steps)) lag_steps = lg
       if (present(n_future_vars)) n_future_vars = nf
       if (present(future_vars_mask)) future_vars_mask = fm
       if (present(steps_taken)) steps_taken = nt
    end if
    call check(rc, 'info', stat, errmsg)
  end subroutine coupler_info

  !> Cumulative column-step counts per status since creation: counts(0:RSC_NSTATUS-1) (exactly
  !> RSC_NSTATUS elements; declare it with RSC_NSTATUS so that new status codes follow).
  subroutine coupler_counters(self, counts, stat, errmsg)
    class(rsoil_coupler), intent(in) :: self
    integer(c_long_long), intent(out), contiguous :: counts(0:)
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    if (.not. shape_ok(shape(counts), [RSC_NSTATUS], 'counts', '(RSC_NSTATUS)', 'counters', stat, &
         errmsg)) return
    call check(c_rsc_coupler_counters(self%handle, counts), 'counters', stat, errmsg)
  end subroutine coupler_counters

  !> .true. when the load probe found a column's values independent of its row in a call (chunk_size > 0;
  !> streaming and window models): then they are the same on 1 or N MPI ranks (rsc_coupler_rows_independent).
  function coupler_rows_independent(self, stat, errmsg) result(yes)
    class(rsoil_coupler), intent(in) :: self
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    logical :: yes
    integer(c_int) :: flag
    flag = 0
    call check(c_rsc_coupler_rows_independent(self%handle, flag), 'rows_independent', stat, errmsg)
    yes = flag /= 0
  end function coupler_rows_independent

  !> The model's identity (metadata model_id).
  function coupler_model_id(self, stat, errmsg) result(id)
    class(rsoil_coupler), intent(in) :: self
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    character(len=:), allocatable :: id
    character(kind=c_char) :: buf(256)
    integer(c_int) :: rc
    buf = c_null_char
    rc = c_rsc_coupler_model_id(self%handle, buf, size(buf, kind=c_size_t))
    id = from_c(buf)
    call check(rc, 'model_id', stat, errmsg)
  end function coupler_model_id

  !> The last step's input problems (first offending column, variable, value), '' after a clean step.
  function coupler_diagnostic(self, stat, errmsg) result(text)
    class(rsoil_coupler), intent(in) :: self
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    character(len=:), allocatable :: text
    character(kind=c_char) :: buf(msg_len)
    integer(c_size_t) :: n
    integer(c_int) :: rc
    buf = c_null_char
    rc = c_rsc_coupler_diagnostic(self%handle, buf, size(buf, kind=c_size_t), n)
    text = from_c(buf)
    call check(rc, 'diagnostic', stat, errmsg)
  end function coupler_diagnostic

  !> Size of the restart-state blob [bytes]; 0 on error.
  function coupler_state_size(self, stat, errmsg) result(nbytes)
    class(rsoil_coupler), intent(in) :: self
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    integer(c_size_t) :: nbytes
    nbytes = 0
    call check(c_rsc_coupler_state_size(self%handle, nbytes), 'state_size', stat, errmsg)
  end function coupler_state_size

  !> The whole coupling state (buffers, mask, counters, options, model identity) as bytes, for the
  !> host's restart file. `blob` is (re)allocated to the state size.
  subroutine coupler_get_state(self, blob, stat, errmsg)
    class(rsoil_coupler), intent(in) :: self
    integer(c_int8_t), allocatable, intent(out) :: blob(:)
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    integer(c_size_t) :: nbytes
    integer :: rc
    nbytes = self%state_size(rc, errmsg)
    if (rc /= RSC_OK) then
       allocate(blob(0))
       call check(rc, 'get_state', stat, errmsg)
       return
    end if
    allocate(blob(nbytes))
    call check(c_rsc_coupler_state_get(self%handle, blob, nbytes), 'get_state', stat, errmsg)
  end subroutine coupler_get_state

  !> Restore a blob from get_state into a coupler made with the same model, ncol, policy and strict.
  subroutine coupler_put_state(self, blob, stat, errmsg)
    class(rsoil_coupler), intent(inout) :: self
    integer(c_int8_t), intent(in), contiguous :: blob(:)
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    call check(c_rsc_coupler_state_put(self%handle, blob, size(blob, kind=c_size_t)), 'put_state', &
         stat, errmsg)
  end subroutine coupler_put_state

  !> Destroy the coupler. Safe to call twice and on a coupler never initialized.
  subroutine coupler_finalize(self, stat, errmsg)
    class(rsoil_coupler), intent(inout) :: self
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    integer(c_int) :: rc
    rc = RSC_OK
    if (c_associated(self%handle)) rc = c_rsc_coupler_destroy(self%handle)
    self%handle = c_null_ptr
    self%ncol = 0
    call check(rc, 'finalize', stat, errmsg)
  end subroutine coupler_finalize

  !> .true. between a successful init and finalize.
  logical function coupler_initialized(self)
    class(rsoil_coupler), intent(in) :: self
    coupler_initialized = c_associated(self%handle)
  end function coupler_initialized

  !> Finalizer: destroys the handle when the object goes out of scope; never stops the program.
  subroutine coupler_final(self)
    type(rsoil_coupler), intent(inout) :: self
    integer :: rc
    call self%finalize(rc)
  end subroutine coupler_final

  ! ---------------------------------------------------------------------------------------------
  ! Error handling: one place maps a C result code to stat/errmsg or to ERROR STOP.
  ! ---------------------------------------------------------------------------------------------

  subroutine check(rc, where, stat, errmsg)
    integer(c_int), intent(in) :: rc
    character(len=*), intent(in) :: where
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    character(kind=c_char) :: buf(msg_len)
    integer(c_int) :: n
    if (rc == RSC_OK) then
       if (present(stat)) stat = 0
       return
    end if
    buf = c_null_char
    n = c_rsc_last_error(buf, size(buf, kind=c_size_t))
    call fail(rc, where, from_c(buf), stat, errmsg)
  end subroutine check

  subroutine fail(rc, where, text, stat, errmsg)
    integer, intent(in) :: rc
    character(len=*), intent(in) :: where, text
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    character(len=:), allocatable :: line
    line = 'rsoil_couple: ' // where // ': ' // text
    if (present(errmsg)) errmsg = line
    if (.not. present(stat)) error stop line
    stat = rc
  end subroutine fail

  !> The coupler holds a handle (init succeeded); otherwise RSC_E_BAD_HANDLE, before any shape check.
  logical function handle_ok(self, where, stat, errmsg)
    class(rsoil_coupler), intent(in) :: self
    character(len=*), intent(in) :: where
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    handle_ok = c_associated(self%handle)
    if (.not. handle_ok) call fail(RSC_E_BAD_HANDLE, where, 'coupler not initialized (call init first)', &
         stat, errmsg)
  end function handle_ok

  !> A Fortran-side shape check (the C side cannot see Fortran array shapes): every dimension of
  !> argument `name` against `expected`; on a mismatch RSC_E_INVALID_ARGUMENT with a message like
  !> "future_tsoil_k has shape (1, 8); expected (48, 8) = (future_steps, ncol)".
  logical function shape_ok(got, expected, name, meaning, where, stat, errmsg)
    integer, intent(in) :: got(:), expected(:)
    character(len=*), intent(in) :: name, meaning, where
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    shape_ok = size(got) == size(expected)
    if (shape_ok) shape_ok = all(got == expected)
    if (shape_ok) return
    call fail(RSC_E_INVALID_ARGUMENT, where, name // ' has shape ' // shape_text(got) // '; expected ' &
         // shape_text(expected) // ' = ' // meaning, stat, errmsg)
  end function shape_ok

  !> "(1, 8)"
  function shape_text(dims) result(s)
    integer, intent(in) :: dims(:)
    character(len=:), allocatable :: s
    character(len=24) :: num
    integer :: i
    s = '('
    do i = 1, size(dims)
       write (num, '(i0)') dims(i)
       s = s // trim(num)
       if (i < size(dims)) s = s // ', '
    end do
    s = s // ')'
  end function shape_text

  function from_c(buf) result(s)
    character(kind=c_char), intent(in) :: buf(:)
    character(len=:), allocatable :: s
    integer :: i, n
    n = size(buf)
    do i = 1, size(buf)
       if (buf(i) == c_null_char) then
          n = i - 1
          exit
       end if
    end do
    allocate(character(len=n) :: s)
    do i = 1, n
       s(i:i) = buf(i)
    end do
  end function from_c

  function c_string(p) result(s)
    use, intrinsic :: iso_c_binding, only: c_f_pointer
    type(c_ptr), intent(in) :: p
    character(len=:), allocatable :: s
    interface
       function c_strlen(str) bind(c, name="strlen") result(n)
         import :: c_ptr, c_size_t
         type(c_ptr), value :: str
         integer(c_size_t) :: n
       end function c_strlen
    end interface
    character(kind=c_char), pointer :: chars(:)
    if (.not. c_associated(p)) then
       s = ''
       return
    end if
    call c_f_pointer(p, chars, [c_strlen(p)])
    s = from_c([chars, c_null_char])
  end function c_string

end module rsoil_couple_mod
