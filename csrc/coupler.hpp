// The coupler: per-column driver ring buffers, batched TorchScript inference, future-driver policies,
// Q10 fallback with per-column status codes, counters, and restart state (DESIGN.md "Coupling
// semantics"). Canonical units throughout: tsoil °C, swc m3 m-3, precip mm per step, Rsoil µmol m-2 s-1.
//
// This header has no libtorch include (pimpl), so the pybind11 module compiles against it quickly and
// with pip's pybind11 only.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "model_meta.hpp"
#include "rsoil_couple.h"

namespace rsc {

// Every error the core raises: an RSC_E_* code and a message naming the problem.
struct CoreError : std::runtime_error {
  int code;
  CoreError(int code_, const std::string& msg) : std::runtime_error(msg), code(code_) {}
};

constexpr double kGcPerUmol = 12.011e-6;  // gC m-2 s-1 per µmol CO2 m-2 s-1
constexpr double kQ10RefMin = 1e-12;      // below this Q10 reference the respiration scalar is 1
// Layout 2: 8 counters (status BAD_OUTPUT added); layout 1 blobs (7 counters) are refused.
constexpr uint32_t kStateLayoutVersion = 2;
// Streaming models (a `streaming` record in the metadata): their float32 state instead of ring buffers.
constexpr uint32_t kStreamingStateLayoutVersion = 3;
// Largest steps_taken a state blob may carry: 2^53 steps (4e11 years of 30-min steps) keeps every
// ring index (step +- window lengths) and steps_taken * ncol far from int64 overflow.
constexpr int64_t kMaxStepsTaken = int64_t(1) << 53;

// Model files by name (csrc/model_path.cpp, the rule of rsoil_couple.pretrained): `name_or_path` itself
// when it is an existing file or not a bare name (non-empty, no '/', not ending in ".pt"); else the first
// <dir>/<name>.pt of model_search_dirs(). A bare name found nowhere throws CoreError(RSC_E_FILE) listing
// the folders looked in and the names available there.
bool is_bare_model_name(const std::string& s);
std::string installed_model_dir();  // <folder of librsoil_core.so>/RSOIL_MODELDIR_FROM_LIB ("" if unknown)
std::vector<std::pair<std::string, std::string>> model_search_dirs();  // (folder, where from), in order
std::string resolve_model_path(const std::string& name_or_path);

struct Options {
  int ncol = 1;
  int policy = RSC_POLICY_SUPPLIED;
  bool strict = false;
  int chunk_size = 0;   // columns per forward; 0 = all active columns at once
  int num_threads = 0;  // > 0: at::set_num_threads (process-wide); 0: unchanged
};

class Coupler {
 public:
  // Loads `model_path`, validates its metadata and checks it against the module (dry forward).
  Coupler(const std::string& model_path, const Options& opt);
  ~Coupler();
  Coupler(const Coupler&) = delete;
  Coupler& operator=(const Coupler&) = delete;

  const ModelMeta& meta() const;
  const Options& options() const;
  int spinup_steps() const;   // window models: rows needed before the first network output (SPINUP
                              // steps + 1); streaming models: the record's spinup_steps (SPINUP steps)
  int lag_steps() const;      // future_steps for LAGGED, else 0
  int capacity() const;       // ring buffer length [steps]; 0 for a streaming model
  bool streaming() const;     // the model file has a `streaming` record
  int streaming_state_size() const;  // floats of model state per column (0 for a window model)
  // streaming, chunk_size > 0: one step() call per time step on all columns (bit-identical to one call
  // per chunk on this machine, as the load probe found) instead of one per chunk
  bool streaming_single_call() const;
  // chunk_size > 0: the load probe found a column's values independent of its row in a call (rows
  // reversed, bit for bit; streaming models: step(), window models: forward()): what makes a column's
  // values independent of the decomposition (1 MPI rank == N ranks). False where the module's kernels
  // round by row (e.g. some small matrix products), or with chunk_size 0 (not probed). (The name is
  // kept from when only streaming models were probed.)
  bool streaming_rows_independent() const;
  int64_t steps_taken() const;
  std::array<int64_t, RSC_NSTATUS> counters() const;
  std::string diagnostic() const;  // the last step's input problems ("" if none)

  // use_model[ncol]: nonzero = network, 0 = Q10 (status MASKED).
  void set_mask(const int* use_model);
  std::vector<int> mask() const;

  // One time step for all columns. Inputs [ncol] in canonical units; future[v] is
  // [ncol][future_steps] (C order) for each future variable v under SUPPLIED, nullptr otherwise.
  // Outputs [ncol]. Transactional: throws CoreError on bad arguments or a failing forward
  // (RSC_E_MODEL), and then has written no output and left the state unchanged.
  void step(const double* tsoil_c, const double* swc_m3m3, const double* precip_mm,
            const std::array<const double*, kNVars>& future, double* rsoil_umol_m2_s,
            double* rsoil_gc_m2_s, double* resp_scalar, int* status);

  size_t state_size() const;
  std::vector<uint8_t> state_get() const;
  void state_put(const uint8_t* data, size_t nbytes);  // throws CoreError(RSC_E_STATE) naming the field

  // Seconds spent inside the module's forward, and inside step() altogether, over all steps (the
  // difference is the core's own cost: buffering, status, gathering, fallback; for the benchmark).
  double forward_seconds() const;
  double stepping_seconds() const;

 private:
  friend class InUse;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  mutable std::atomic<bool> in_use_{false};
};

// A coupler is not thread-safe; concurrent use is detected and refused, never raced. Every entry
// point of the C API and of the pybind11 module that reads or changes a coupler's mutable state holds
// one InUse for the duration of the call. Taking it when another thread holds it throws
// CoreError(RSC_E_BUSY) before anything is touched. Not reentrant (one per call, at the boundary).
class InUse {
 public:
  explicit InUse(const Coupler& c);
  ~InUse();
  InUse(const InUse&) = delete;
  InUse& operator=(const InUse&) = delete;
  // Non-throwing form for rsc_coupler_destroy: true if the flag was taken (then call release()).
  static bool try_take(const Coupler& c);
  static void release(const Coupler& c);

 private:
  const Coupler& c_;
};

// The message of RSC_E_BUSY.
extern const char* const kBusyMessage;

}  // namespace rsc
