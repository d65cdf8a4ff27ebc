// The coupler's private state (rsc::Coupler::Impl) and the helpers its two source files share:
// coupler.cpp (creation, the window models' step, restart) and streaming.cpp (the streaming models'
// step and load check). Not installed; includes libtorch.
#pragma once

#include <torch/script.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "coupler.hpp"
#include "q10.hpp"

namespace rsc {

// Per stored driver value: how it stands against the metadata's ranges. Larger = worse; a window's
// status comes from its worst value (a streaming model's from step t's values).
enum Class : uint8_t { kOk = 0, kOutsideEnvelope = 1, kImpossible = 2, kMissing = 3 };

inline std::string first_line(const std::string& s) {
  const size_t n = s.find('\n');
  return n == std::string::npos ? s : s.substr(0, n);
}

inline std::string fmt(double x) {
  std::ostringstream o;
  o.precision(6);
  o << x;
  return o.str();
}

// Enough digits to tell two float32 values apart.
inline std::string fmt9(double x) {
  std::ostringstream o;
  o.precision(9);
  o << x;
  return o.str();
}

// A one-line message for an exception out of the module's forward or step (defined in coupler.cpp).
std::string one_line_error(const std::string& s);

// A setup field of the restart blob (after ncol, policy, strict): its name and this coupler's value.
struct SetupField {
  const char* name;
  int32_t value;
};

struct Coupler::Impl {
  std::string path;
  Options opt;
  ModelMeta meta;
  torch::jit::Module module;

  int P = 0, F = 0, day_steps = 0;
  int cap = 0;        // ring length [steps]
  int spinup = 0;     // rows needed before the network runs
  int lag = 0;        // LAGGED: F
  std::array<Range, kNVars> phys{};  // physical ranges, defaults for variables the model does not take
  std::array<bool, kNVars> future_used{};

  // Ring buffers, layout [ncol][cap][kNVars]; the value of step s sits in slot s % cap.
  std::vector<double> buf;
  std::vector<uint8_t> cls;  // Class of each stored value, same layout
  std::vector<int> mask;     // 1 = network, 0 = Q10
  int64_t steps = 0;
  std::array<int64_t, RSC_NSTATUS> counts{};
  std::string diag;
  double forward_s = 0.0;
  double stepping_s = 0.0;

  // Scratch reused across steps.
  std::vector<int> active;
  std::vector<uint8_t> fut_cls;  // SUPPLIED: worst Class of each column's future drivers
  std::vector<uint8_t> bad_now;  // column has a problem in the current step's drivers
  std::vector<double> undo_buf;  // the ring row a step overwrites [ncol][kNVars], for rollback
  std::vector<uint8_t> undo_cls;
  std::vector<double> o_rsoil, o_scalar;  // outputs, copied to the caller on success only
  std::vector<int> o_status;

  // Streaming models (meta.streaming.present; docs/core.md "Streaming models"): the module's own
  // float32 state per column replaces the ring buffers (cap = 0, buf/cls empty).
  bool streaming = false;
  int S = 0;                     // floats of state per column
  std::vector<float> state;      // [ncol][S], changed only by a successful step (or state_put)
  std::vector<float> new_state;  // scratch: the state the step computes, swapped in at commit
  std::vector<float> drivers;    // scratch: [ncol][n_past_vars] this step's drivers as the model reads them
  // chunk_size > 0 and ncol > chunk_size: one step() call on all columns (padded to single_call_rows())
  // instead of one per chunk, when the load probe found the two bit-identical
  bool single_call = false;
  // chunk_size > 0: a column's values found independent of its row in a call by the load probe
  // (streaming: step(); window models: forward())
  bool rows_independent = false;

  size_t at(int c, int64_t s, int v) const {
    return (static_cast<size_t>(c) * cap + static_cast<size_t>(s % cap)) * kNVars + v;
  }

  uint8_t classify(int v, double x) const {
    if (!std::isfinite(x)) return kMissing;
    if (x < phys[v].min || x > phys[v].max) return kImpossible;
    if (meta.used[v] && (x < meta.envelope[v].min || x > meta.envelope[v].max)) return kOutsideEnvelope;
    return kOk;
  }

  // Worst class in rows [s0, s1] of column c over variables `vars`.
  // Worst class in rows [s0, s1] of column c over variables `vars`. The rows are walked as (at most
  // two) contiguous slot ranges of the ring, without a modulo per row (this scan and the gather
  // below are the core's own cost per step).
  uint8_t worst(int c, int64_t s0, int64_t s1, const std::vector<int>& vars) const {
    uint8_t w = kOk;
    for_slots(c, s0, s1, [&](size_t i0, size_t n) {
      const uint8_t* p = cls.data() + i0;
      for (size_t r = 0; r < n; ++r, p += kNVars)
        for (int v : vars) w = std::max(w, p[v]);
    });
    return w;
  }

  // Calls f(first value index, number of rows) for the contiguous slot ranges of rows [s0, s1].
  template <class Fn>
  void for_slots(int c, int64_t s0, int64_t s1, Fn&& f) const {
    if (s1 < s0) return;
    const int64_t n = s1 - s0 + 1;
    const int64_t first = s0 % cap;
    const int64_t n1 = std::min<int64_t>(n, cap - first);
    f(at(c, s0, 0), static_cast<size_t>(n1));
    if (n1 < n) f(static_cast<size_t>(c) * cap * kNVars, static_cast<size_t>(n - n1));
  }

  void load(const std::string& model_path);
  void check_against_module();
  void check_streaming_module(const torch::Tensor& midpoint_drivers);
  bool probe_single_call(const torch::Tensor& midpoint_drivers);
  bool probe_rows_independent(const torch::Tensor& midpoint_drivers);
  bool probe_window_rows_independent(const torch::Tensor& midpoint_past, const torch::Tensor& midpoint_future);
  torch::Tensor probe_windows(const torch::Tensor& midpoint, const std::vector<int>& vars, int64_t rows) const;
  torch::Tensor probe_drivers(const torch::Tensor& midpoint_drivers, int64_t rows) const;
  void freeze_streaming_module();
  // chunk_size > 0: every step() (streaming) or forward() (window) call is padded to a multiple of kCallRowMultiple rows
  // (rsoil_couple/variables.py CALL_ROW_MULTIPLE: no scalar tail in any float32 loop of the call, so a
  // column's value does not depend on its row in the call; AVX-512 CPUs round those tails differently).
  static int64_t padded_call_rows(int64_t n) {
    return (n + gen::kCallRowMultiple - 1) / gen::kCallRowMultiple * gen::kCallRowMultiple;
  }
  // Rows of a per-chunk call, and of the one call on all columns (single_call).
  int64_t chunk_call_rows() const { return padded_call_rows(opt.chunk_size); }
  int64_t single_call_rows() const { return padded_call_rows(opt.ncol); }
  torch::Tensor forward(const torch::Tensor& past, const torch::Tensor& future);
  // Streaming models: one call of the module's step(state, drivers) on nb rows -> (Rsoil [nb] as double,
  // new state [nb, S] float32); throws CoreError(RSC_E_MODEL) on a failing call or wrong outputs.
  std::pair<torch::Tensor, torch::Tensor> call_step(const torch::Tensor& st, const torch::Tensor& drv, int64_t nb);
  void step_streaming(const double* const* now, double* out_r, double* out_s, int* out_st, std::string* diag);
  void commit(const double* out_r, const double* out_s, const int* out_st, std::string* diag, double* rsoil,
              double* gc, double* scalar, int* status);
  // The restart blob's three setup fields after ncol, policy, strict (layout 2 or 3).
  std::array<SetupField, 3> setup_fields() const {
    if (streaming)
      return {{{"state_size", S}, {"spinup_steps", spinup}, {"n_past_vars", static_cast<int32_t>(meta.past_vars.size())}}};
    return {{{"capacity", cap}, {"past_steps", P}, {"future_steps", F}}};
  }
  std::string describe_problem(int c, int v, double x, uint8_t k, int ncol_bad, const std::string& where) const;
  bool locate_in_window(int c, uint8_t w, int64_t t, int64_t ref, const std::array<const double*, kNVars>& future,
                        int* v_out, double* x_out, std::string* where) const;
};

}  // namespace rsc
