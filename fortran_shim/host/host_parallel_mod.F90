!> Column decomposition over MPI ranks, gathers to rank 0, and the host's one-line error exit.
!> Built with MPI when RSOIL_HOST_MPI is defined; otherwise one process owns all columns.
module host_parallel_mod
  use, intrinsic :: iso_fortran_env, only: error_unit, int8, real64
#ifdef RSOIL_HOST_MPI
  use mpi_f08
#endif
  implicit none
  private
  public :: par_init, par_finalize, par_decompose, par_gather, par_abort, par_warn, par_any, &
       par_max_time
  integer, public, protected :: nranks = 1, myrank = 0

  interface par_gather
     module procedure gather_r8, gather_int, gather_i1
  end interface par_gather

  ! per-rank column counts and offsets (0-based) of the decomposition, for gathers on rank 0
  integer, allocatable :: counts(:), displs(:)

contains

  subroutine par_init()
#ifdef RSOIL_HOST_MPI
    call MPI_Init()
    call MPI_Comm_size(MPI_COMM_WORLD, nranks)
    call MPI_Comm_rank(MPI_COMM_WORLD, myrank)
#endif
  end subroutine par_init

  subroutine par_finalize()
#ifdef RSOIL_HOST_MPI
    call MPI_Finalize()
#endif
  end subroutine par_finalize

  !> Block decomposition of global columns 1..ncol: this rank owns begc..endc (sizes differ by <= 1).
  subroutine par_decompose(ncol, begc, endc)
    integer, intent(in) :: ncol
    integer, intent(out) :: begc, endc
    integer :: r
    if (ncol < nranks) call par_abort('more MPI ranks than columns')
    allocate(counts(0:nranks - 1), displs(0:nranks - 1))
    do r = 0, nranks - 1
       counts(r) = ncol / nranks + merge(1, 0, r < mod(ncol, nranks))
    end do
    displs(0) = 0
    do r = 1, nranks - 1
       displs(r) = displs(r - 1) + counts(r - 1)
    end do
    begc = displs(myrank) + 1
    endc = displs(myrank) + counts(myrank)
  end subroutine par_decompose

  !> Gather local column values x(nloc, m) into g(ncol, m) on rank 0 (g unused elsewhere).
  subroutine gather_r8(x, g)
    real(real64), intent(in) :: x(:, :)
    real(real64), intent(inout) :: g(:, :)
    integer :: j
    do j = 1, size(x, 2)
#ifdef RSOIL_HOST_MPI
       call MPI_Gatherv(x(:, j), size(x, 1), MPI_DOUBLE_PRECISION, g(:, j), counts, displs, &
            MPI_DOUBLE_PRECISION, 0, MPI_COMM_WORLD)
#else
       g(:, j) = x(:, j)
#endif
    end do
  end subroutine gather_r8

  subroutine gather_int(x, g)
    integer, intent(in) :: x(:)
    integer, intent(inout) :: g(:)
#ifdef RSOIL_HOST_MPI
    call MPI_Gatherv(x, size(x), MPI_INTEGER, g, counts, displs, MPI_INTEGER, 0, MPI_COMM_WORLD)
#else
    g = x
#endif
  end subroutine gather_int

  !> Gather one byte blob per rank into g(maxlen, nranks) and their lengths n(nranks) on rank 0.
  subroutine gather_i1(x, g, n)
    integer(int8), intent(in) :: x(:)
    integer(int8), allocatable, intent(out) :: g(:, :)
    integer, allocatable, intent(out) :: n(:)
    integer :: maxlen
#ifdef RSOIL_HOST_MPI
    integer :: r, d(0:nranks - 1)
    allocate(n(nranks))
    call MPI_Allgather(size(x), 1, MPI_INTEGER, n, 1, MPI_INTEGER, MPI_COMM_WORLD)
    maxlen = max(1, maxval(n))
    allocate(g(maxlen, nranks))
    g = 0
    d = [((r - 1) * maxlen, r = 1, nranks)]
    call MPI_Gatherv(x, size(x), MPI_INTEGER1, g, n, d, MPI_INTEGER1, 0, MPI_COMM_WORLD)
#else
    n = [size(x)]
    maxlen = max(1, n(1))
    allocate(g(maxlen, 1))
    g = 0
    g(1:n(1), 1) = x
#endif
  end subroutine gather_i1

  !> .true. on every rank if `flag` is .true. on any rank.
  logical function par_any(flag)
    logical, intent(in) :: flag
    par_any = flag
#ifdef RSOIL_HOST_MPI
    call MPI_Allreduce(flag, par_any, 1, MPI_LOGICAL, MPI_LOR, MPI_COMM_WORLD)
#endif
  end function par_any

  !> The largest value over ranks (for timings).
  real(real64) function par_max_time(t)
    real(real64), intent(in) :: t
    par_max_time = t
#ifdef RSOIL_HOST_MPI
    call MPI_Allreduce(t, par_max_time, 1, MPI_DOUBLE_PRECISION, MPI_MAX, MPI_COMM_WORLD)
#endif
  end function par_max_time

  !> One line on stderr, from this rank.
  subroutine par_warn(msg)
    character(len=*), intent(in) :: msg
    write (error_unit, '(a)') 'clm_like_host: warning: ' // msg
  end subroutine par_warn

  !> Stop the whole run with exit code 2 and one line naming the problem (`clm_like_host: error: ...`).
  !> Call it where all ranks detect the error alike (namelist, forcing, model) or from the failing
  !> rank alone; with one rank the exit is clean, with more MPI_Abort ends the other ranks.
  subroutine par_abort(msg)
    character(len=*), intent(in) :: msg
    if (nranks > 1) then
       write (error_unit, '(a,i0,a)') 'clm_like_host: error (rank ', myrank, '): ' // msg
    else
       write (error_unit, '(a)') 'clm_like_host: error: ' // msg
    end if
    flush (error_unit)
#ifdef RSOIL_HOST_MPI
    if (nranks > 1) call MPI_Abort(MPI_COMM_WORLD, 2)
    call MPI_Finalize()
#endif
    stop 2, quiet=.true.
  end subroutine par_abort

end module host_parallel_mod
