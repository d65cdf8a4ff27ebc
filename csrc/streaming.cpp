// Streaming models in the coupler (docs/core.md "Streaming models"): the load check of the module's
// initial_state / step / run, one call of step(state, drivers) on a chunk of rows, and one time step
// for all columns. The state lives in Coupler::Impl (coupler_impl.hpp); Coupler::step commits it.
#include <chrono>
#include <cmath>
#include <cstring>

#include "coupler_impl.hpp"

namespace rsc {

// A streaming model's record must describe its module (rsoil_couple.modelfile.export.check_streaming_module
// checks the same in Python): initial_state, step and run exist, and a dry initial_state(nb) + step
// on nb rows of envelope-midpoint drivers gives a float32 state [nb, S] and Rsoil [nb].
void Coupler::Impl::check_streaming_module(const torch::Tensor& midpoint_drivers) {
  const std::string head = path + ": rsoil_meta.json: streaming: metadata inconsistent with the module: ";
  for (const char* name : {"initial_state", "step", "run"})
    if (!module.find_method(name))
      throw CoreError(RSC_E_METADATA, head + "the record is present but the module has no method " + name +
                                          " (a streaming model has initial_state, step, run)");
  const int64_t nb = midpoint_drivers.size(0);
  std::string what = "initial_state(" + std::to_string(nb) + ")";
  auto shape_of = [](const c10::IValue& v) {
    return v.isTensor() ? c10::str(v.toTensor().sizes()) + " " + c10::toString(v.toTensor().scalar_type())
                        : std::string("a ") + v.tagKind();
  };
  try {
    c10::InferenceMode guard;
    const c10::IValue init = module.get_method("initial_state")({c10::IValue(nb)});
    const bool init_ok = init.isTensor() && init.toTensor().dim() == 2 && init.toTensor().size(0) == nb &&
                         init.toTensor().size(1) == S && init.toTensor().scalar_type() == torch::kFloat32;
    if (!init_ok)
      throw CoreError(RSC_E_METADATA, head + what + " returned " + shape_of(init) + ", expected [" +
                                          std::to_string(nb) + ", " + std::to_string(S) + "] float32 (state_size)");
    what = "step(state [" + std::to_string(nb) + ", " + std::to_string(S) + "], drivers [" + std::to_string(nb) +
           ", " + std::to_string(midpoint_drivers.size(1)) + "])";
    call_step(init.toTensor(), midpoint_drivers, nb);
  } catch (const CoreError& e) {
    if (e.code == RSC_E_METADATA) throw;
    std::string msg = e.what();  // call_step's RSC_E_MODEL message: "step: ..."
    if (msg.rfind("step: ", 0) == 0) msg = msg.substr(6);
    throw CoreError(RSC_E_METADATA, head + what + ": " + msg);
  } catch (const c10::Error& e) {
    throw CoreError(RSC_E_METADATA, head + what + " failed: " + first_line(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    throw CoreError(RSC_E_METADATA, head + what + " failed: " + first_line(e.what()));
  }
}

// After the load check, the module is frozen (torch::jit::freeze, optimize_numerics off) with its
// forward, initial_state, step and run kept: parameters and buffers become constants, so what the step
// derives from them alone (E0, Q10, exp/softplus/sigmoid of the raw parameters, for every member of an
// ensemble) is computed once here instead of at every call; the kg_stream ensembles' step takes about
// half the time. The same kernels compute the same values, so the outputs do not change (the core is
// tested bit for bit against the unfrozen module in Python). A module that cannot be frozen runs as loaded.
void Coupler::Impl::freeze_streaming_module() {
  try {
    module = torch::jit::freeze(module, std::vector<std::string>{"initial_state", "step", "run"},
                                /*optimize_numerics=*/false);
  } catch (const std::exception&) {
    // keep the module as loaded
  }
}

// With chunk_size > 0 a step's value must not depend on which columns share its call. One call on all
// ncol columns, padded to single_call_rows() (a multiple of kCallRowMultiple), is used instead of one call
// per chunk of chunk_size columns (each padded to chunk_call_rows()) only where this probe finds them
// bit-identical on this machine and threads: ncol columns of varied drivers inside the envelope, three
// steps from initial_state, both ways, Rsoil and state compared bit for bit. libtorch picks its kernels by
// shape, not by value, so the probe's shapes are the ones the steps use. Any failure keeps the per-chunk
// calls (never an error).
namespace {
// A fresh contiguous tensor of rows b0 .. b0+nb of x, then copies of its last row up to `rows` rows: what
// every step() call gets, in the steps and in the load probes alike (never a view of x: a module that
// wrote into its input must not touch the committed state).
torch::Tensor padded_rows(const torch::Tensor& x, int64_t b0, int64_t nb, int64_t rows) {
  torch::Tensor part = x.narrow(0, b0, nb);
  if (rows == nb) return part.contiguous().clone();
  return torch::cat({part, part.narrow(0, nb - 1, 1).expand({rows - nb, x.size(1)})}).contiguous();
}
}  // namespace

// `rows` windows [rows, T, nv] of varied values of `vars` inside the envelope around the midpoint
// window [.., T, nv] (the load probes' input): value + 0.4 * envelope width * sin(0.37 r + 0.11 t + 1.3 k).
torch::Tensor Coupler::Impl::probe_windows(const torch::Tensor& midpoint, const std::vector<int>& vars,
                                           int64_t rows) const {
  const int64_t T = midpoint.size(1), nv = midpoint.size(2);
  torch::Tensor x = midpoint.select(0, 0).unsqueeze(0).repeat({rows, 1, 1}).contiguous();
  float* px = x.data_ptr<float>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t k = 0; k < nv; ++k) {
        const Range& e = meta.envelope.at(vars[static_cast<size_t>(k)]);
        px[(r * T + t) * nv + k] += static_cast<float>(0.4 * (e.max - e.min) * std::sin(0.37 * r + 0.11 * t + 1.3 * k));
      }
  return x;
}

// Streaming models: `rows` rows [rows, n_past_vars] of one step's drivers (a window of one step, t = 0).
torch::Tensor Coupler::Impl::probe_drivers(const torch::Tensor& midpoint_drivers, int64_t rows) const {
  return probe_windows(midpoint_drivers.unsqueeze(1), meta.past_vars, rows).squeeze(1);
}

// chunk_size > 0: is a column's value independent of its row in a call? Three steps of chunk_call_rows()
// varied rows, and of the same rows in reverse order, compared bit for bit (Rsoil and state). Padding every
// call to a multiple of kCallRowMultiple rows removes the vector loops' scalar tails, but a module's
// matrix products may still round by row (libtorch's kernel for some small shapes does, e.g. 7 -> 8
// features): then a column's values depend on the decomposition, and this says so.
bool Coupler::Impl::probe_rows_independent(const torch::Tensor& midpoint_drivers) {
  if (opt.chunk_size <= 0) return false;
  const int64_t R = chunk_call_rows();
  try {
    c10::InferenceMode guard;
    torch::Tensor drv = probe_drivers(midpoint_drivers, R);
    torch::Tensor rev = torch::arange(R - 1, -1, -1, torch::kLong);
    torch::Tensor s_a = module.get_method("initial_state")({c10::IValue(R)}).toTensor().contiguous();
    torch::Tensor s_b = s_a.index_select(0, rev).contiguous();
    torch::Tensor y_a, y_b;
    for (int it = 0; it < 3; ++it) {
      torch::Tensor d = (drv * (1.0f + 0.05f * it)).contiguous();
      std::tie(y_a, s_a) = call_step(s_a, d, R);
      std::tie(y_b, s_b) = call_step(s_b, d.index_select(0, rev).contiguous(), R);
    }
    return torch::equal(y_a, y_b.index_select(0, rev)) && torch::equal(s_a, s_b.index_select(0, rev));
  } catch (const std::exception&) {
    return false;
  }
}

// Window models, chunk_size > 0: the same question for forward(past, future) on chunk_call_rows() rows of
// varied windows inside the envelope (each row's past and future its own sine of time), and on the same
// rows reversed, compared bit for bit.
bool Coupler::Impl::probe_window_rows_independent(const torch::Tensor& midpoint_past,
                                                 const torch::Tensor& midpoint_future) {
  if (opt.chunk_size <= 0) return false;
  const int64_t R = chunk_call_rows();
  try {
    c10::InferenceMode guard;
    torch::Tensor past = probe_windows(midpoint_past, meta.past_vars, R);
    torch::Tensor fut = probe_windows(midpoint_future, meta.future_vars, R);
    torch::Tensor rev = torch::arange(R - 1, -1, -1, torch::kLong);
    torch::Tensor y_a = forward(past, fut);
    torch::Tensor y_b = forward(past.index_select(0, rev).contiguous(), fut.index_select(0, rev).contiguous());
    return torch::equal(y_a, y_b.index_select(0, rev));
  } catch (const std::exception&) {
    return false;
  }
}

bool Coupler::Impl::probe_single_call(const torch::Tensor& midpoint_drivers) {
  const int64_t chunk = opt.chunk_size;
  const int64_t n = opt.ncol;
  if (chunk <= 0 || n <= chunk) return false;
  const int64_t M = single_call_rows();
  const int64_t R = chunk_call_rows();
  try {
    c10::InferenceMode guard;
    torch::Tensor drv = probe_drivers(midpoint_drivers, n);
    torch::Tensor s_chunks = module.get_method("initial_state")({c10::IValue(n)}).toTensor().contiguous();
    torch::Tensor s_one = s_chunks.clone();
    torch::Tensor y_one, y_chunks;
    for (int it = 0; it < 3; ++it) {
      torch::Tensor d = (drv * (1.0f + 0.05f * it)).contiguous();
      auto [y1, s1] = call_step(padded_rows(s_one, 0, n, M), padded_rows(d, 0, n, M), M);
      y_one = y1.narrow(0, 0, n).contiguous();
      s_one = s1.narrow(0, 0, n).contiguous();
      std::vector<torch::Tensor> ys, ss;
      for (int64_t b0 = 0; b0 < n; b0 += chunk) {
        const int64_t nb = std::min(chunk, n - b0);
        auto [y, ns] = call_step(padded_rows(s_chunks, b0, nb, R), padded_rows(d, b0, nb, R), R);
        ys.push_back(y.narrow(0, 0, nb));
        ss.push_back(ns.narrow(0, 0, nb));
      }
      y_chunks = torch::cat(ys).contiguous();
      s_chunks = torch::cat(ss).contiguous();
    }
    return std::memcmp(y_one.data_ptr<double>(), y_chunks.data_ptr<double>(), sizeof(double) * n) == 0 &&
           std::memcmp(s_one.data_ptr<float>(), s_chunks.data_ptr<float>(), sizeof(float) * n * S) == 0;
  } catch (const std::exception&) {
    return false;
  }
}

std::pair<torch::Tensor, torch::Tensor> Coupler::Impl::call_step(const torch::Tensor& st, const torch::Tensor& drv,
                                                                 int64_t nb) {
  const auto t0 = std::chrono::steady_clock::now();
  c10::IValue res;
  try {
    res = module.get_method("step")({st, drv});
  } catch (const c10::Error& e) {
    throw CoreError(RSC_E_MODEL, "step: the model's step failed: " + one_line_error(e.what_without_backtrace()));
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {  // torch::jit::JITException (a TorchScript `raise`), others
    throw CoreError(RSC_E_MODEL, "step: the model's step failed: " + one_line_error(e.what()));
  }
  forward_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string want = "expected (Rsoil [" + std::to_string(nb) + "], state [" + std::to_string(nb) + ", " +
                           std::to_string(S) + "] float32)";
  if (!res.isTuple() || res.toTupleRef().elements().size() != 2 || !res.toTupleRef().elements()[0].isTensor() ||
      !res.toTupleRef().elements()[1].isTensor())
    throw CoreError(RSC_E_MODEL, "step: the model's step returned " + std::string(res.tagKind()) + ", " + want);
  torch::Tensor y = res.toTupleRef().elements()[0].toTensor();
  torch::Tensor ns = res.toTupleRef().elements()[1].toTensor();
  if (y.dim() != 1 || y.size(0) != nb || y.is_complex() || y.scalar_type() == torch::kBool)
    throw CoreError(RSC_E_MODEL, "step: the model's step returned Rsoil " + c10::str(y.sizes()) + " " +
                                     c10::toString(y.scalar_type()) + ", " + want);
  if (ns.dim() != 2 || ns.size(0) != nb || ns.size(1) != S || ns.scalar_type() != torch::kFloat32)
    throw CoreError(RSC_E_MODEL, "step: the model's step returned state " + c10::str(ns.sizes()) + " " +
                                     c10::toString(ns.scalar_type()) + ", " + want);
  return {y.to(torch::kFloat64).contiguous(), ns.contiguous()};
}

// One step of a streaming model (docs/core.md "Streaming models"): statuses from step t's own drivers,
// one call of step(state, drivers) per chunk on ALL columns (masked and spinning-up ones too, so that
// their state stays current), Q10 where the network's value is not used. Writes the outputs and the
// new state to scratch only; Coupler::step commits them.
void Coupler::Impl::step_streaming(const double* const* now, double* out_r, double* out_s, int* out_st,
                                   std::string* diag) {
  const int ncol = opt.ncol;
  const int64_t t = steps;
  const int npv = static_cast<int>(meta.past_vars.size());
  const bool q10_swc = meta.q10.form != Q10Form::Q10;
  int first = -1, first_v = 0, nbad = 0;
  double first_x = 0;
  uint8_t first_k = kOk;
  for (int c = 0; c < ncol; ++c) {
    uint8_t k[kNVars];
    bool bad = false;
    for (int v = 0; v < kNVars; ++v) {
      k[v] = classify(v, now[v][c]);
      if (k[v] != kOk && (meta.used[v] || k[v] >= kImpossible)) {
        if (first < 0) { first = c; first_v = v; first_x = now[v][c]; first_k = k[v]; }
        bad = true;
      }
    }
    uint8_t w = kOk;
    for (int j = 0; j < npv; ++j) {  // a missing or impossible driver reaches the model as NaN: it holds
      const int v = meta.past_vars[j];
      w = std::max(w, k[v]);
      drivers[static_cast<size_t>(c) * npv + j] = k[v] >= kImpossible ? std::nanf("") : static_cast<float>(now[v][c]);
    }
    int st;
    if (!mask[c]) st = RSC_STATUS_MASKED;
    else if (t < spinup) st = RSC_STATUS_SPINUP;
    else if (w == kMissing) st = RSC_STATUS_MISSING;
    else if (w == kImpossible) st = RSC_STATUS_IMPOSSIBLE;
    else if (w == kOutsideEnvelope) st = opt.strict ? RSC_STATUS_EXTRAPOLATION_FALLBACK : RSC_STATUS_EXTRAPOLATING;
    else st = RSC_STATUS_ACTIVE;
    out_st[c] = st;
    nbad += bad ? 1 : 0;
    const bool unusable = k[kTsoil] >= kImpossible || (q10_swc && k[kSwc] >= kImpossible);
    out_r[c] = unusable ? std::nan("") : q10_predict(meta.q10, now[kTsoil][c], now[kSwc][c]);
    out_s[c] = 1.0;
  }
  if (first >= 0)
    *diag = describe_problem(first, first_v, first_x, first_k, nbad,
                             first_k >= kImpossible ? "in the current step's drivers (passed to the streaming model "
                                                      "as NaN: it holds the last valid value)"
                                                    : "in the current step's drivers");

  // Every column through step(), in chunks; with chunk_size > 0 every call has chunk_call_rows() rows
  // (chunk_size padded to a multiple of kCallRowMultiple with copies of the chunk's last row): a column's
  // value is then independent of ncol, of the other columns and of its row (1 MPI rank == N ranks).
  // With single_call (the load probe), one call on every column, padded to single_call_rows().
  const int chunk = single_call || opt.chunk_size <= 0 ? ncol : std::min(opt.chunk_size, ncol);
  const int64_t rows = single_call ? single_call_rows() : (opt.chunk_size > 0 ? chunk_call_rows() : chunk);
  int nbad_out = 0, first_bad_out = -1;
  double first_bad_out_x = 0;
  c10::InferenceMode guard;
  const torch::Tensor all_state = torch::from_blob(state.data(), {ncol, S}, torch::kFloat32);
  const torch::Tensor all_drivers = torch::from_blob(drivers.data(), {ncol, npv}, torch::kFloat32);
  for (int b0 = 0; b0 < ncol; b0 += chunk) {
    const int nb = std::min(chunk, ncol - b0);
    const int64_t nr = opt.chunk_size > 0 ? rows : nb;
    const auto [y, ns] = call_step(padded_rows(all_state, b0, nb, nr), padded_rows(all_drivers, b0, nb, nr), nr);
    std::memcpy(new_state.data() + static_cast<size_t>(b0) * S, ns.data_ptr<float>(), sizeof(float) * nb * S);
    const double* o = y.data_ptr<double>();
    for (int b = 0; b < nb; ++b) {
      const int c = b0 + b;
      if (out_st[c] != RSC_STATUS_ACTIVE && out_st[c] != RSC_STATUS_EXTRAPOLATING) continue;
      const double v = o[b];
      if (!std::isfinite(v) || v < 0.0) {  // never an ACTIVE value: Q10 fallback, counted, named
        out_st[c] = RSC_STATUS_BAD_OUTPUT;
        if (nbad_out++ == 0) { first_bad_out = c; first_bad_out_x = v; }
        continue;
      }
      const double q = out_r[c];
      out_r[c] = v;
      out_s[c] = (std::isfinite(q) && q > kQ10RefMin) ? v / q : 1.0;
    }
  }
  if (nbad_out > 0) {
    std::ostringstream o;
    if (!diag->empty()) o << *diag << "; ";
    else o << "step " << t << ": ";
    o << nbad_out << " column(s) with a non-finite or negative network output (status BAD_OUTPUT, Q10 "
      << "fallback); first: column " << first_bad_out << " rsoil = " << fmt(first_bad_out_x) << " umol m-2 s-1";
    *diag = o.str();
  }
}

}  // namespace rsc
