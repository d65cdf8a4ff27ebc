/*
 * rsoil_couple.h — C API of the rsoil_couple inference core (library `rsoil_core`).
 *
 * A land model (CLM-like) creates one coupler per process (per MPI rank) for its `ncol` columns,
 * calls `rsc_coupler_step` once per time step with that step's drivers, and receives per column the
 * soil respiration of a knowledge-guided LSTM (or of its Q10 fallback) and a status code.
 *
 * Conventions (all functions):
 *   - Every function returns an `int` result code: RSC_OK (0) on success, a positive RSC_E_* code on
 *     failure. On failure a message naming the problem is stored per thread and is read with
 *     `rsc_last_error`. A successful call does not clear the message.
 *   - No C++ exception crosses this interface; the library never calls exit() or abort().
 *   - Handles are opaque. Every call validates the handle against the registry of live couplers,
 *     so a call with a destroyed (or never created) handle returns RSC_E_BAD_HANDLE, not a crash.
 *   - A coupler is NOT thread-safe. Concurrent calls on the same coupler are detected and refused:
 *     every function taking a handle holds a per-coupler "in use" flag for the duration of the call;
 *     a call that finds it held returns RSC_E_BUSY at once, without writing any output or touching
 *     the coupler (destroy included: a coupler in use is not destroyed). Different couplers may be
 *     used from different threads at the same time.
 *   - Units are in argument names: `_k` kelvin, `_c` degree Celsius, `_m3m3` m3 m-3,
 *     `_mm_s` mm s-1 (kg m-2 s-1 of water), `_umol_m2_s` µmol CO2 m-2 s-1, `_gc_m2_s` gC m-2 s-1.
 *     They follow CLM's history units (TSOI K, H2OSOI mm3/mm3, RAIN mm/s, HR gC/m^2/s).
 *     1 µmol CO2 m-2 s-1 = 12.011e-6 gC m-2 s-1.
 *   - Arrays of one value per column are contiguous, length `ncol`, column index fastest.
 *     Two-dimensional arrays are stated as C shapes `[a][b]` (row-major, last index fastest); the same
 *     memory seen from Fortran is `x(b, a)` (column-major), e.g. `future_tsoil_k[ncol][future_steps]`
 *     is Fortran `future_tsoil_k(future_steps, ncol)`. No array is retained after a call returns.
 *
 * Time convention: a driver value for step t is the mean (or, for precipitation, the rate) over the
 * step ending at t. The model predicts Rsoil for step t from the past window t-past_steps+1 … t and
 * the future window t+1 … t+future_steps (see docs/model_format.md and docs/core.md).
 *
 * Streaming model files (a `streaming` record in rsoil_meta.json) run through the same functions:
 * the coupler then keeps the model's own float32 state per column instead of a driver window and
 * calls its `step` once per time step on every column; statuses come from the step's own drivers,
 * future_steps is 0 (every policy is the same), and the restart blob has layout version 3
 * (docs/core.md, "Streaming models").
 */
#ifndef RSOIL_COUPLE_H
#define RSOIL_COUPLE_H

#include <stddef.h>

#if defined(_WIN32)
#define RSC_API __declspec(dllexport)
#else
#define RSC_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------------ */
/* Result codes of every function (fixed numbers).                                                   */
/* ------------------------------------------------------------------------------------------------ */
enum {
  RSC_OK = 0,
  RSC_E_INVALID_ARGUMENT = 1, /* a value out of its allowed set/range (e.g. wrong ncol, bad policy) */
  RSC_E_NULL_POINTER = 2,     /* a required pointer argument is NULL                                */
  RSC_E_BAD_HANDLE = 3,       /* handle NULL, destroyed, or never created                           */
  RSC_E_FILE = 4,             /* model file missing or unreadable                                   */
  RSC_E_MODEL = 5,            /* file is not a loadable TorchScript module, or its forward failed   */
  RSC_E_METADATA = 6,         /* rsoil_meta.json missing, malformed, unknown schema version, or
                                 inconsistent with the module; the message names the field         */
  RSC_E_STATE = 7,            /* state blob malformed, of another layout version, model or setup   */
  RSC_E_BUFFER_TOO_SMALL = 8, /* an output buffer is smaller than needed                            */
  RSC_E_INTERNAL = 9,         /* anything else (out of memory, unexpected exception)                */
  RSC_E_BUSY = 10             /* the coupler is in use by another thread: the call was refused and
                                 did nothing (no output written, state unchanged)                   */
};

/* ------------------------------------------------------------------------------------------------ */
/* Per-column status codes, written by rsc_coupler_step (same numbers in Python and Fortran,        */
/* see docs/model_format.md).                                                                        */
/* ------------------------------------------------------------------------------------------------ */
enum {
  RSC_STATUS_ACTIVE = 0,                 /* network ran, all inputs inside the training envelope     */
  RSC_STATUS_EXTRAPOLATING = 1,          /* network ran, some window input outside the envelope      */
  RSC_STATUS_SPINUP = 2,                 /* buffer not yet full -> Q10 fallback                      */
  RSC_STATUS_MISSING = 3,                /* NaN/Inf driver in the window -> Q10 fallback
                                            (NaN Rsoil if the reported step's own drivers are NaN)   */
  RSC_STATUS_IMPOSSIBLE = 4,             /* driver in the window outside the physical range -> Q10
                                            (NaN Rsoil if the reported step's own drivers are)       */
  RSC_STATUS_MASKED = 5,                 /* host's mask chose Q10 for this column                    */
  RSC_STATUS_EXTRAPOLATION_FALLBACK = 6, /* outside the envelope with strict on -> Q10 fallback     */
  RSC_STATUS_BAD_OUTPUT = 7              /* the network returned a non-finite or negative Rsoil for
                                            this column -> Q10 fallback (named in the diagnostic)    */
};
#define RSC_NSTATUS 8

/* ------------------------------------------------------------------------------------------------ */
/* Future-driver policies (what fills the model's future window, which a running land model lacks). */
/* ------------------------------------------------------------------------------------------------ */
enum {
  RSC_POLICY_LAGGED = 0,      /* exact, delayed: every output of step t refers to step t-future_steps */
  RSC_POLICY_PERSISTENCE = 1, /* future = yesterday's diel cycle shifted to today's level; output for t */
  RSC_POLICY_SUPPLIED = 2     /* host passes the future drivers itself (offline runs); output for t     */
};

/* Opaque coupler handle. */
typedef struct rsc_coupler rsc_coupler;

/* Library version string, e.g. "0.1.0" (static storage; never NULL). */
RSC_API const char* rsc_version(void);

/*
 * Copy the calling thread's last error message (NUL-terminated, truncated to buflen-1 bytes) into
 * `buf`. Returns the full message length in bytes (without the NUL), 0 if there is no message.
 * `buf` may be NULL when `buflen` is 0 (to query the length).
 */
RSC_API int rsc_last_error(char* buf, size_t buflen);

/* Same message as a pointer valid until the calling thread's next rsc_* call (never NULL). */
RSC_API const char* rsc_last_error_message(void);

/*
 * Create a coupler.
 *   model_path   NUL-terminated path of a model file written by rsoil_couple.export (TorchScript with
 *                rsoil_meta.json inside), or the name of a pretrained model: a bare name (no '/', not
 *                ending in ".pt") that names no existing file is looked up as <dir>/<name>.pt in the
 *                folders of the environment variable RSOIL_MODEL_PATH (':'-separated), then in the
 *                installed models folder <folder of this library>/../pretrained; RSC_E_FILE (listing
 *                the folders) if none has it (docs/fortran.md). The metadata is validated and a dry
 *                forward with zero tensors of the declared shapes checks that it matches the module.
 *   ncol         number of columns, >= 1.
 *   policy       RSC_POLICY_*.
 *   strict       0: columns outside the training envelope run the network (status EXTRAPOLATING);
 *                1: they fall back to Q10 (status EXTRAPOLATION_FALLBACK).
 *   chunk_size   0: all active columns in one forward call (fastest; a column's value can then
 *                differ in the last float32 bit with the number of active columns, ~1e-7 relative).
 *                > 0: every forward call has chunk_size rows rounded up to a multiple of 64 (the
 *                last chunk padded), so a column's value is bit for bit independent of the other
 *                columns where rsc_coupler_rows_independent says so: the same with 1 or N MPI ranks,
 *                any mask, any ncol. Use it (e.g. 64) where decompositions must agree.
 *   num_threads  > 0: sets libtorch's intra-op thread count — PROCESS-WIDE (at::set_num_threads also
 *                changes it for any other libtorch user in the process, e.g. Python torch);
 *                0: leave the current setting.
 *   out          receives the new handle (set to NULL on failure).
 * All columns start active (mask = use model) with empty buffers.
 */
RSC_API int rsc_coupler_create(const char* model_path, int ncol, int policy, int strict, int chunk_size,
                               int num_threads, rsc_coupler** out);

/* Destroy *h and set *h = NULL. NULL h or NULL *h: no-op, RSC_OK. Destroying twice through the same
 * pointer is therefore safe; a stale copy of a destroyed handle gives RSC_E_BAD_HANDLE. */
RSC_API int rsc_coupler_destroy(rsc_coupler** h);

/*
 * Per-column mask. use_model[ncol]: nonzero = the column uses the network (subject to its status),
 * 0 = the column uses the Q10 fallback (status MASKED). Buffers keep filling for masked columns, so a
 * column switched back on runs the network at once if its window is valid (streaming models: the
 * model's state keeps advancing for masked columns, so no new spin-up). Part of the restart state.
 */
RSC_API int rsc_coupler_set_mask(rsc_coupler* h, int ncol, const int* use_model);

/*
 * Advance one time step for all columns.
 * Inputs (this step's drivers, one per column):
 *   tsoil_k[ncol]        soil temperature at the model's depth [K]
 *   swc_m3m3[ncol]       volumetric soil water content [m3 m-3]
 *   precip_mm_s[ncol]    precipitation rate over the step [mm s-1]; converted to mm per step by
 *                        multiplying by the model's step_seconds
 *   future_tsoil_k[ncol][future_steps], future_swc_m3m3[ncol][future_steps],
 *   future_precip_mm_s[ncol][future_steps]
 *                        policy SUPPLIED only: drivers of steps t+1 … t+future_steps in time order,
 *                        for each variable the model takes as future input (rsc_coupler_info /
 *                        docs/core.md); pass NULL for variables it does not take and for the other
 *                        policies (a non-NULL future array under another policy is an error).
 * Outputs (one per column; all required, written for every column on RSC_OK):
 *   rsoil_umol_m2_s[ncol] soil respiration [µmol CO2 m-2 s-1]
 *   rsoil_gc_m2_s[ncol]   the same [gC m-2 s-1]
 *   resp_scalar[ncol]     rsoil / rsoil_q10_reference [-]: the ratio of the returned Rsoil to the
 *                         fallback Q10 at the same drivers, to multiply into the host's
 *                         decomposition rates; 1 for every Q10-fallback status; 1 when the Q10
 *                         reference is not > 1e-12 µmol m-2 s-1 or not finite
 *   status[ncol]          RSC_STATUS_* per column
 * With RSC_POLICY_LAGGED all four outputs refer to step t-future_steps (for the first future_steps
 * steps, which have no such step: Q10 on the current drivers with status SPINUP).
 * Bad driver values are NOT call errors: they give per-column statuses MISSING/IMPOSSIBLE, and
 * rsc_coupler_diagnostic names the first offending column, variable and value.
 * A network output that is not finite or is negative is not a call error either: that column falls
 * back to Q10 with status BAD_OUTPUT (counted, named in the diagnostic); ACTIVE/EXTRAPOLATING values
 * are always finite and >= 0.
 * Wrong ncol, NULL required pointers or a bad handle are call errors, and so is a forward that raises
 * or returns a wrong shape (RSC_E_MODEL, one-line message). Every failed call is transactional: no
 * output is written and the coupler's state (buffers, counters, step count, diagnostic) is unchanged.
 * The lengths of the arrays cannot be checked here: each must hold ncol (future: ncol*future_steps)
 * values.
 */
RSC_API int rsc_coupler_step(rsc_coupler* h, int ncol, const double* tsoil_k, const double* swc_m3m3,
                             const double* precip_mm_s, const double* future_tsoil_k,
                             const double* future_swc_m3m3, const double* future_precip_mm_s,
                             double* rsoil_umol_m2_s, double* rsoil_gc_m2_s, double* resp_scalar,
                             int* status);

/*
 * Message about the last step's input problems (NaN/Inf, out of physical range, out of envelope):
 * the first offending column (0-based), variable, value and limits, which window holds it (the
 * current step, the past window at offset -k, or the future window at offset +k), and how many
 * columns were affected; then, if any, the columns whose network output was non-finite or negative
 * (status BAD_OUTPUT). Empty after a clean step. Copied like rsc_last_error; *len_out (if not NULL) receives the
 * full length.
 */
RSC_API int rsc_coupler_diagnostic(const rsc_coupler* h, char* buf, size_t buflen, size_t* len_out);

/*
 * Model and setup facts; any output pointer may be NULL.
 *   past_steps, future_steps  window lengths [steps];  step_seconds  step length [s]
 *   spinup_steps              window models: rows needed before the first network output (the
 *                             first spinup_steps - 1 steps have status SPINUP); streaming models:
 *                             the metadata's streaming.spinup_steps, the number of steps with
 *                             status SPINUP (the network's first output is at step spinup_steps)
 *   lag_steps                 steps by which outputs lag the drivers (future_steps for LAGGED, else 0)
 *   n_future_vars             number of future input variables (0 when future_steps == 0)
 *   future_vars_mask          bit 0 tsoil, bit 1 swc, bit 2 precip: which future_* arrays SUPPLIED needs
 *   steps_taken               number of successful rsc_coupler_step calls (restored by state_put)
 */
RSC_API int rsc_coupler_info(const rsc_coupler* h, int* past_steps, int* future_steps,
                             double* step_seconds, int* spinup_steps, int* lag_steps,
                             int* n_future_vars, int* future_vars_mask, long long* steps_taken);

/*
 * *rows_independent = 1 when the load probe found a column's values independent of its row in a call
 * (chunk_size > 0; streaming models: three step() calls, window models: one forward(), of chunk_size
 * rounded up to a multiple of 64 varied rows and the same rows reversed, bit for bit), so that a
 * column's values are the same on 1 or N MPI ranks; 0 where the module's kernels round by row on this
 * CPU (e.g. some small matrix products), and with chunk_size 0 (not probed).
 */
RSC_API int rsc_coupler_rows_independent(const rsc_coupler* h, int* rows_independent);

/* Model identity (metadata model_id, NUL-terminated) copied into buf[buflen]. */
RSC_API int rsc_coupler_model_id(const rsc_coupler* h, char* buf, size_t buflen);

/*
 * Cumulative per-status column-step counts since creation (restored by state_put):
 * counts[RSC_NSTATUS], counts[s] = number of (column, step) pairs with status s.
 */
RSC_API int rsc_coupler_counters(const rsc_coupler* h, long long* counts);

/*
 * Restart state: a self-describing byte blob (magic "RSCSTATE", layout version, model_id, ncol, policy,
 * strict, step count, ring buffers, mask, counters, checksum; in the host's byte order, layout in
 * docs/core.md; a restart on another machine kind is not supported). Streaming models: layout version
 * 3, the model's float32 state [ncol][state_size] bit for bit in place of the ring buffers; a blob
 * of the other kind of model is refused naming layout_version.
 *   state_size  *nbytes = size of the blob now (it depends only on the setup, not on the step count)
 *   state_get   write the blob into buf[buflen]; RSC_E_BUFFER_TOO_SMALL if buflen < size
 *   state_put   restore a blob into a coupler created with the same model file (model_id), ncol,
 *               policy and strict; any mismatch or corruption is RSC_E_STATE naming the field, and
 *               leaves the coupler unchanged. Besides the checksum, every field's range is checked
 *               (steps_taken in [0, 2^53], counters >= 0 summing to steps_taken * ncol, mask values
 *               0/1, strict 0/1), so a hand-edited blob with a recomputed checksum cannot put the
 *               coupler into a state whose index arithmetic overflows. Blobs of an older layout
 *               version (1: 7 counters, before status BAD_OUTPUT) are refused. Outputs after a put are bit-for-bit those of the
 *               unbroken run.
 */
RSC_API int rsc_coupler_state_size(const rsc_coupler* h, size_t* nbytes);
RSC_API int rsc_coupler_state_get(const rsc_coupler* h, void* buf, size_t buflen);
RSC_API int rsc_coupler_state_put(rsc_coupler* h, const void* buf, size_t buflen);

#ifdef __cplusplus
}
#endif

#endif /* RSOIL_COUPLE_H */
