// rsc::Coupler: creation and the load checks, the window models' step (ring buffers, policies, status,
// batched forward, Q10 fallback), counters and restart state. Streaming models' step: streaming.cpp.
#include "coupler_impl.hpp"

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

namespace rsc {

namespace {

// Physical range of a variable the model does not take (only the Q10 fallback may read it): the
// canonical range of rsoil_couple/variables.py, through the generated rsc_variables.hpp.
Range default_physical(int v) { return Range{gen::kPhysicalMin[v], gen::kPhysicalMax[v]}; }

// Bytes of a blob for a message: printable ASCII as is, others as \xNN (a corrupted model_id must not
// make the message invalid UTF-8, which pybind11 and the cffi wrapper could not decode).
std::string printable(const std::string& s) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char ch : s) {
    if (ch >= 0x20 && ch < 0x7f) {
      out += static_cast<char>(ch);
    } else {
      out += "\\x";
      out += hex[ch >> 4];
      out += hex[ch & 0xF];
    }
  }
  return out;
}

}  // namespace

void Coupler::Impl::load(const std::string& name_or_path) {
  const std::string model_path = resolve_model_path(name_or_path);  // a bare name: csrc/model_path.cpp
  path = model_path;
  {
    std::ifstream f(model_path, std::ios::binary);
    if (!f.good()) throw CoreError(RSC_E_FILE, "model file not found or unreadable: " + model_path);
  }
  torch::jit::ExtraFilesMap extra{{"rsoil_meta.json", ""}};
  try {
    module = torch::jit::load(model_path, torch::kCPU, extra);
  } catch (const c10::Error& e) {
    throw CoreError(RSC_E_MODEL, "not a TorchScript model file: " + model_path + ": " +
                                     first_line(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    throw CoreError(RSC_E_MODEL, "not a TorchScript model file: " + model_path + ": " + first_line(e.what()));
  }
  module.eval();
  const std::string& text = extra["rsoil_meta.json"];
  if (text.empty())
    throw CoreError(RSC_E_METADATA, "model file " + model_path +
                                        " has no rsoil_meta.json (not written by rsoil_couple.export?)");
  try {
    meta = parse_model_meta(text);
    check_model_identity(model_path, meta);
  } catch (const MetaError& e) {
    throw CoreError(RSC_E_METADATA, model_path + ": " + e.what());
  }
}

torch::Tensor Coupler::Impl::forward(const torch::Tensor& past, const torch::Tensor& future) {
  const auto t0 = std::chrono::steady_clock::now();
  torch::Tensor out = module.forward({past, future}).toTensor();
  forward_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

// The metadata must describe the module: a dry forward with zero tensors of the declared shapes must
// return [batch] values; where the module records its own window lengths / variable counts as
// attributes, they must equal the metadata's.
void Coupler::Impl::check_against_module() {
  const struct { const char* attr; int value; const char* field; } facts[] = {
      {"past_steps", P, "past_steps"},
      {"future_steps", F, "future_steps"},
      {"n_past", static_cast<int>(meta.past_vars.size()), "past_vars"},
      {"n_future", static_cast<int>(meta.future_vars.size()), "future_vars"},
  };
  for (const auto& f : facts) {
    if (!module.hasattr(f.attr)) continue;
    const c10::IValue v = module.attr(f.attr);
    if (v.isInt() && v.toInt() != f.value)
      throw CoreError(RSC_E_METADATA, path + ": rsoil_meta.json: " + f.field +
                                          ": metadata inconsistent with the module (module." + f.attr + " = " +
                                          std::to_string(v.toInt()) + ", metadata gives " +
                                          std::to_string(f.value) + ")");
  }
  // The module names its inputs (DESIGN.md): where it carries past_var_names / future_var_names
  // (written by rsoil_couple.models.base.RsoilModel), names AND order must equal the metadata's, so a
  // file whose metadata lists the drivers in another order than the network reads them is refused.
  // Files without these attributes (written before they existed) are trusted on the metadata's order.
  for (int which = 0; which < 2; ++which) {
    const char* attr = which == 0 ? "past_var_names" : "future_var_names";
    const char* field = which == 0 ? "past_vars" : "future_vars";
    const std::vector<int>& vars = which == 0 ? meta.past_vars : meta.future_vars;
    if (!module.hasattr(attr)) continue;
    std::string meta_list = "[", module_list = "[";
    for (size_t k = 0; k < vars.size(); ++k) meta_list += (k ? ", " : "") + std::string(kVarNames[vars[k]]);
    meta_list += "]";
    const c10::IValue v = module.attr(attr);
    bool ok = v.isList();
    std::vector<std::string> names;
    if (ok) {
      for (const c10::IValue& e : v.toListRef()) {
        if (!e.isString()) { ok = false; break; }
        names.push_back(e.toStringRef());
      }
    }
    if (!ok)
      throw CoreError(RSC_E_METADATA, path + ": module." + attr + " is not a list of strings (" + v.tagKind() + ")");
    for (size_t k = 0; k < names.size(); ++k) module_list += (k ? ", " : "") + names[k];
    module_list += "]";
    if (module_list != meta_list)
      throw CoreError(RSC_E_METADATA, path + ": rsoil_meta.json: " + field + ": metadata inconsistent with the module: "
                                          "the metadata lists " + meta_list + ", the module takes " + module_list +
                                          " (module." + attr + "); names and order must match");
  }
  // The site scale (DESIGN.md "Site scale vs shared response"): where the metadata has a site_scale
  // record, the module's float32 0-d buffer site_scale (which multiplies its output) must hold that value.
  if (meta.has_site_scale) {
    const std::string field = path + ": rsoil_meta.json: site_scale.value: ";
    if (!module.hasattr("site_scale"))
      throw CoreError(RSC_E_METADATA, field + "the metadata gives " + fmt(meta.site_scale) +
                                          " but the module has no site_scale buffer");
    const c10::IValue v = module.attr("site_scale");
    if (!v.isTensor() || v.toTensor().dim() != 0 || v.toTensor().scalar_type() != torch::kFloat32)
      throw CoreError(RSC_E_METADATA, field + "module.site_scale is not a float32 0-d tensor (" +
                                          (v.isTensor() ? c10::str(v.toTensor().scalar_type(), " ", v.toTensor().sizes())
                                                        : std::string(v.tagKind())) + ")");
    const float got = v.toTensor().item<float>();
    if (static_cast<float>(meta.site_scale) != got)
      throw CoreError(RSC_E_METADATA, field + "metadata inconsistent with the module: the metadata gives " +
                                          fmt9(meta.site_scale) + ", the module's site_scale buffer holds " +
                                          fmt9(got) + " (equal as float32 required)");
  }
  const int64_t nb = 2;
  const int64_t npv = static_cast<int64_t>(meta.past_vars.size());
  const int64_t nfv = static_cast<int64_t>(meta.future_vars.size());
  torch::Tensor past = torch::zeros({nb, P, npv}, torch::kFloat32);
  torch::Tensor future = torch::zeros({nb, F, F > 0 ? nfv : 0}, torch::kFloat32);
  // Zero precipitation and a mid-envelope state: a module that normalises might divide by zero
  // inputs of other variables otherwise; fill each variable with its envelope midpoint.
  auto fill = [&](torch::Tensor& t, const std::vector<int>& vars) {
    for (size_t k = 0; k < vars.size(); ++k)
      t.select(2, static_cast<int64_t>(k)).fill_(0.5 * (meta.envelope[vars[k]].min + meta.envelope[vars[k]].max));
  };
  fill(past, meta.past_vars);
  if (F > 0) fill(future, meta.future_vars);
  std::ostringstream shapes;
  shapes << "forward(past [" << nb << ", " << P << ", " << npv << "], future [" << nb << ", " << F << ", "
         << (F > 0 ? nfv : 0) << "])";
  torch::Tensor out;
  try {
    c10::InferenceMode guard;
    out = forward(past, future);
  } catch (const c10::Error& e) {
    throw CoreError(RSC_E_METADATA, path + ": metadata inconsistent with the module's inputs (past_steps, "
                                           "past_vars, future_steps, future_vars): " + shapes.str() +
                                           " failed: " + first_line(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    throw CoreError(RSC_E_METADATA, path + ": metadata inconsistent with the module's inputs: " + shapes.str() +
                                           " failed: " + first_line(e.what()));
  }
  if (out.dim() != 1 || out.size(0) != nb || !out.is_floating_point())
    throw CoreError(RSC_E_METADATA, path + ": module output inconsistent with metadata output: " + shapes.str() +
                                           " returned shape " + c10::str(out.sizes()) + ", expected [" +
                                           std::to_string(nb) + "] floating point");
  if (streaming) {
    check_streaming_module(past.select(1, P - 1).contiguous());
    freeze_streaming_module();
    single_call = probe_single_call(past.select(1, P - 1).contiguous());
    rows_independent = probe_rows_independent(past.select(1, P - 1).contiguous());
  } else {
    rows_independent = probe_window_rows_independent(past, future);
  }
  forward_s = 0.0;
}


Coupler::Coupler(const std::string& model_path, const Options& opt) : impl_(new Impl) {
  Impl& m = *impl_;
  if (opt.ncol < 1) throw CoreError(RSC_E_INVALID_ARGUMENT, "ncol must be >= 1, got " + std::to_string(opt.ncol));
  if (opt.policy < RSC_POLICY_LAGGED || opt.policy > RSC_POLICY_SUPPLIED)
    throw CoreError(RSC_E_INVALID_ARGUMENT, "policy must be 0 (lagged), 1 (persistence) or 2 (supplied), got " +
                                                std::to_string(opt.policy));
  if (opt.chunk_size < 0)
    throw CoreError(RSC_E_INVALID_ARGUMENT, "chunk_size must be >= 0, got " + std::to_string(opt.chunk_size));
  if (opt.num_threads < 0)
    throw CoreError(RSC_E_INVALID_ARGUMENT, "num_threads must be >= 0, got " + std::to_string(opt.num_threads));
  m.opt = opt;
  m.load(model_path);
  m.P = m.meta.past_steps;
  m.F = m.meta.future_steps;
  m.day_steps = static_cast<int>(std::lround(86400.0 / m.meta.step_seconds));
  if (m.day_steps < 1) m.day_steps = 1;
  m.streaming = m.meta.streaming.present;
  if (m.streaming) {  // F = 0 (metadata rule): the policy changes nothing; no ring buffer
    m.S = m.meta.streaming.state_size;
    m.spinup = m.meta.streaming.spinup_steps;
    m.cap = 0;
  } else {
    switch (opt.policy) {
      case RSC_POLICY_LAGGED: m.spinup = m.P + m.F; m.lag = m.F; break;
      case RSC_POLICY_PERSISTENCE: m.spinup = std::max(m.P, m.F > 0 ? m.day_steps + 1 : 0); break;
      default: m.spinup = m.P; break;
    }
    m.cap = m.spinup;
  }
  for (int v = 0; v < kNVars; ++v) m.phys[v] = m.meta.used[v] ? m.meta.physical_range[v] : default_physical(v);
  for (int v : m.meta.future_vars) m.future_used[v] = true;
  if (opt.num_threads > 0) at::set_num_threads(opt.num_threads);
  m.check_against_module();
  const size_t n = static_cast<size_t>(opt.ncol) * m.cap * kNVars;
  m.buf.assign(n, 0.0);
  m.cls.assign(n, kMissing);
  m.mask.assign(opt.ncol, 1);
  m.fut_cls.assign(opt.ncol, kOk);
  m.bad_now.assign(opt.ncol, 0);
  m.undo_buf.assign(static_cast<size_t>(opt.ncol) * kNVars, 0.0);
  m.undo_cls.assign(static_cast<size_t>(opt.ncol) * kNVars, kMissing);
  m.o_rsoil.assign(opt.ncol, 0.0);
  m.o_scalar.assign(opt.ncol, 0.0);
  m.o_status.assign(opt.ncol, 0);
  if (m.streaming) {
    const size_t ns = static_cast<size_t>(opt.ncol) * m.S;
    const int64_t ncol = opt.ncol;
    c10::IValue init;
    try {
      c10::InferenceMode guard;
      init = m.module.get_method("initial_state")({c10::IValue(ncol)});
    } catch (const c10::Error& e) {
      throw CoreError(RSC_E_MODEL, "initial_state(" + std::to_string(ncol) + ") failed: " +
                                       first_line(e.what_without_backtrace()));
    } catch (const std::bad_alloc&) {
      throw;
    } catch (const std::exception& e) {
      throw CoreError(RSC_E_MODEL, "initial_state(" + std::to_string(ncol) + ") failed: " + first_line(e.what()));
    }
    if (!init.isTensor() || init.toTensor().dim() != 2 || init.toTensor().size(0) != ncol ||
        init.toTensor().size(1) != m.S || init.toTensor().scalar_type() != torch::kFloat32)
      throw CoreError(RSC_E_MODEL, "initial_state(" + std::to_string(ncol) + ") did not return a float32 tensor [" +
                                       std::to_string(ncol) + ", " + std::to_string(m.S) + "]");
    const torch::Tensor st = init.toTensor().contiguous();
    m.state.assign(st.data_ptr<float>(), st.data_ptr<float>() + ns);
    m.new_state.assign(ns, 0.0f);
    m.drivers.assign(static_cast<size_t>(opt.ncol) * m.meta.past_vars.size(), 0.0f);
  }
}

const char* const kBusyMessage =
    "coupler in use by another thread: a coupler is not thread-safe and concurrent calls are refused "
    "(this call did nothing)";

InUse::InUse(const Coupler& c) : c_(c) {
  if (!try_take(c)) throw CoreError(RSC_E_BUSY, kBusyMessage);
}
InUse::~InUse() { release(c_); }
bool InUse::try_take(const Coupler& c) {
  bool expected = false;
  return c.in_use_.compare_exchange_strong(expected, true, std::memory_order_acquire, std::memory_order_relaxed);
}
void InUse::release(const Coupler& c) { c.in_use_.store(false, std::memory_order_release); }

Coupler::~Coupler() = default;

const ModelMeta& Coupler::meta() const { return impl_->meta; }
const Options& Coupler::options() const { return impl_->opt; }
int Coupler::spinup_steps() const { return impl_->spinup; }
int Coupler::lag_steps() const { return impl_->lag; }
int Coupler::capacity() const { return impl_->cap; }
bool Coupler::streaming() const { return impl_->streaming; }
int Coupler::streaming_state_size() const { return impl_->S; }
bool Coupler::streaming_single_call() const { return impl_->single_call; }
bool Coupler::streaming_rows_independent() const { return impl_->rows_independent; }
int64_t Coupler::steps_taken() const { return impl_->steps; }
std::array<int64_t, RSC_NSTATUS> Coupler::counters() const { return impl_->counts; }
std::string Coupler::diagnostic() const { return impl_->diag; }
double Coupler::forward_seconds() const { return impl_->forward_s; }
double Coupler::stepping_seconds() const { return impl_->stepping_s; }
std::vector<int> Coupler::mask() const { return impl_->mask; }

void Coupler::set_mask(const int* use_model) {
  if (!use_model) throw CoreError(RSC_E_NULL_POINTER, "set_mask: use_model is NULL");
  for (int c = 0; c < impl_->opt.ncol; ++c) impl_->mask[c] = use_model[c] != 0 ? 1 : 0;
}

std::string Coupler::Impl::describe_problem(int c, int v, double x, uint8_t k, int ncol_bad,
                                            const std::string& where) const {
  std::ostringstream o;
  o << "step " << steps << ": " << ncol_bad << " column(s) with input problems; first: column " << c << " "
    << kVarNames[v] << " = " << fmt(x) << " " << kVarUnits[v];
  if (k == kMissing) {
    o << " is " << (std::isnan(x) ? "NaN" : "infinite") << " (missing input)";
  } else {
    const Range& r = k == kImpossible ? phys[v] : meta.envelope[v];
    o << " outside the " << (k == kImpossible ? "physical range" : "training envelope") << " [" << fmt(r.min)
      << ", " << fmt(r.max) << "] " << kVarUnits[v];
    if (k == kImpossible && v == kTsoil && x > 150.0) o << " (temperature in K given where degC is declared?)";
    if (k == kImpossible && v == kTsoil && x < -150.0) o << " (temperature in degC given where K is expected?)";
    if (k == kImpossible && v == kPrecip && x < 0.0) o << " (negative precipitation)";
    if (k == kImpossible && v == kSwc && x > 1.0) o << " (soil water in percent given where m3 m-3 is declared?)";
  }
  o << ", " << where;
  return o.str();
}

// The value that gave column c (status from worst class w) its window status: which variable, value,
// and where (past window offset <= 0 / future window offset >= 1, relative to the reported step ref).
bool Coupler::Impl::locate_in_window(int c, uint8_t w, int64_t t, int64_t ref,
                                     const std::array<const double*, kNVars>& future, int* v_out, double* x_out,
                                     std::string* where) const {
  for (int64_t s = ref - P + 1; s <= ref; ++s)
    for (int v : meta.past_vars)
      if (cls[at(c, s, v)] == w) {
        *v_out = v;
        *x_out = buf[at(c, s, v)];
        *where = "in the past window at offset " + std::to_string(s - ref) + " (step " + std::to_string(s) + ")";
        return true;
      }
  if (F == 0) return false;
  if (opt.policy == RSC_POLICY_SUPPLIED) {
    for (int k = 0; k < F; ++k)
      for (int v : meta.future_vars) {
        const double x = future[v][static_cast<size_t>(c) * F + k];
        if (classify(v, x) == w) {
          *v_out = v;
          *x_out = x;
          *where = "in the supplied future window at offset +" + std::to_string(k + 1) + " (future_" +
                   kVarNames[v] + "[" + std::to_string(c) + "][" + std::to_string(k) + "])";
          return true;
        }
      }
  } else {
    const int64_t s0 = opt.policy == RSC_POLICY_LAGGED ? ref + 1 : t - day_steps;
    const int64_t s1 = opt.policy == RSC_POLICY_LAGGED ? ref + F : t;
    for (int64_t s = s0; s <= s1; ++s)
      for (int v : meta.future_vars)
        if (cls[at(c, s, v)] == w) {
          *v_out = v;
          *x_out = buf[at(c, s, v)];
          *where = opt.policy == RSC_POLICY_LAGGED
                       ? "in the future window at offset +" + std::to_string(s - ref) + " (step " + std::to_string(s) + ")"
                       : "in the rows the persistence future window is made from (step " + std::to_string(s) +
                             ", offset " + std::to_string(s - t) + " from the current step)";
          return true;
        }
  }
  return false;
}

// A one-line message for an exception out of the module's forward. TorchScript's JITException (not a
// c10::Error) reads "The following operation failed in the TorchScript interpreter.\nTraceback of
// TorchScript ...\n<Type>: <message>": the useful line is the last non-empty one. Others: the first line.
std::string one_line_error(const std::string& s) {
  std::string line;
  if (s.find("Traceback of TorchScript") != std::string::npos ||
      s.find("The following operation failed in the TorchScript interpreter") != std::string::npos) {
    const size_t end = s.find_last_not_of(" \t\r\n");
    if (end != std::string::npos) {
      const size_t nl = s.rfind('\n', end);
      const size_t b = nl == std::string::npos ? 0 : nl + 1;
      line = s.substr(b, end - b + 1);
    }
  } else {
    line = first_line(s);
  }
  const size_t b = line.find_first_not_of(" \t");
  line = b == std::string::npos ? std::string() : line.substr(b);
  if (line.size() > 400) line = line.substr(0, 400) + " ...";
  return line;
}


// The end of a successful step (nothing here can fail): outputs to the caller, counters, diagnostic,
// step count.
void Coupler::Impl::commit(const double* out_r, const double* out_s, const int* out_st, std::string* diag_,
                           double* rsoil, double* gc, double* scalar, int* status) {
  for (int c = 0; c < opt.ncol; ++c) {
    rsoil[c] = out_r[c];
    scalar[c] = out_s[c];
    status[c] = out_st[c];
    gc[c] = out_r[c] * kGcPerUmol;
    counts[out_st[c]] += 1;
  }
  diag.swap(*diag_);
  steps += 1;
}

void Coupler::step(const double* tsoil_c, const double* swc_m3m3, const double* precip_mm,
                   const std::array<const double*, kNVars>& future, double* rsoil_umol_m2_s,
                   double* rsoil_gc_m2_s, double* resp_scalar, int* status) {
  Impl& m = *impl_;
  const auto t_start = std::chrono::steady_clock::now();
  const int ncol = m.opt.ncol;
  const auto& names = kVarNames;
  const double* now[kNVars] = {tsoil_c, swc_m3m3, precip_mm};
  for (int v = 0; v < kNVars; ++v)
    if (!now[v]) throw CoreError(RSC_E_NULL_POINTER, std::string("step: ") + names[v] + " is NULL");
  if (!rsoil_umol_m2_s || !rsoil_gc_m2_s || !resp_scalar || !status)
    throw CoreError(RSC_E_NULL_POINTER, std::string("step: output array ") +
                                            (!rsoil_umol_m2_s ? "rsoil_umol_m2_s" : !rsoil_gc_m2_s ? "rsoil_gc_m2_s"
                                             : !resp_scalar ? "resp_scalar" : "status") + " is NULL");
  for (int v = 0; v < kNVars; ++v) {
    const bool needed = m.opt.policy == RSC_POLICY_SUPPLIED && m.future_used[v];
    if (needed && !future[v])
      throw CoreError(RSC_E_NULL_POINTER, std::string("step: policy supplied needs future_") + names[v] +
                                              " [ncol][future_steps] (the model takes it as a future input)");
    if (!needed && future[v])
      throw CoreError(RSC_E_INVALID_ARGUMENT, std::string("step: future_") + names[v] + " given but " +
                                                  (m.opt.policy != RSC_POLICY_SUPPLIED
                                                       ? "the policy is not supplied"
                                                       : "the model takes no future " + std::string(names[v])));
  }

  if (m.streaming) {  // transactional: the new state is swapped in only after the whole step succeeded
    std::string diag;
    m.step_streaming(now, m.o_rsoil.data(), m.o_scalar.data(), m.o_status.data(), &diag);
    m.state.swap(m.new_state);
    m.commit(m.o_rsoil.data(), m.o_scalar.data(), m.o_status.data(), &diag, rsoil_umol_m2_s, rsoil_gc_m2_s,
             resp_scalar, status);
    m.stepping_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    return;
  }

  // Transaction: the only state this step changes before its last possible failure (the forward) is
  // the ring slot of step t, one row per column. Keep that row; on any exception put it back, so a
  // failed step leaves the state (and the restart blob) byte for byte as it was. Outputs go to
  // scratch arrays and reach the caller, with counters, step count and diagnostic, only at the end.
  const int64_t t = m.steps;
  for (int c = 0; c < ncol; ++c)
    for (int v = 0; v < kNVars; ++v) {
      const size_t i = m.at(c, t, v);
      m.undo_buf[static_cast<size_t>(c) * kNVars + v] = m.buf[i];
      m.undo_cls[static_cast<size_t>(c) * kNVars + v] = m.cls[i];
    }
  double* out_r = m.o_rsoil.data();
  double* out_s = m.o_scalar.data();
  int* out_st = m.o_status.data();
  std::string diag;
  try {
    // 1. Store this step's drivers and classify them.
    int first_now = -1, first_now_v = 0;
    double first_now_x = 0;
    uint8_t first_now_k = kOk;
    for (int c = 0; c < ncol; ++c) {
      bool bad = false;
      for (int v = 0; v < kNVars; ++v) {
        const double x = now[v][c];
        const size_t i = m.at(c, t, v);
        m.buf[i] = x;
        m.cls[i] = m.classify(v, x);
        if (m.cls[i] != kOk && (m.meta.used[v] || m.cls[i] >= kImpossible)) {
          if (first_now < 0) { first_now = c; first_now_v = v; first_now_x = x; first_now_k = m.cls[i]; }
          bad = true;
        }
      }
      m.bad_now[c] = bad;
    }
    const int P = m.P, F = m.F;
    const int64_t n = t + 1;        // rows stored
    const int64_t ref = t - m.lag;  // the step the outputs refer to
    const bool spun_up = n >= m.spinup;

    // SUPPLIED: classify the host's future drivers.
    if (m.opt.policy == RSC_POLICY_SUPPLIED && F > 0) {
      for (int c = 0; c < ncol; ++c) {
        uint8_t w = kOk;
        for (int v : m.meta.future_vars)
          for (int k = 0; k < F; ++k) w = std::max(w, m.classify(v, future[v][static_cast<size_t>(c) * F + k]));
        m.fut_cls[c] = w;
      }
    }

    // 2. Status per column.
    m.active.clear();
    int first_win = -1, nbad = 0;
    uint8_t first_win_w = kOk;
    for (int c = 0; c < ncol; ++c) {
      int st;
      uint8_t w = kOk;
      if (!m.mask[c]) {
        st = RSC_STATUS_MASKED;
      } else if (!spun_up) {
        st = RSC_STATUS_SPINUP;
      } else {
        w = m.worst(c, ref - P + 1, ref, m.meta.past_vars);
        if (F > 0) {
          if (m.opt.policy == RSC_POLICY_LAGGED) w = std::max(w, m.worst(c, ref + 1, ref + F, m.meta.future_vars));
          else if (m.opt.policy == RSC_POLICY_PERSISTENCE) w = std::max(w, m.worst(c, t - m.day_steps, t, m.meta.future_vars));
          else w = std::max(w, m.fut_cls[c]);
        }
        switch (w) {
          case kMissing: st = RSC_STATUS_MISSING; break;
          case kImpossible: st = RSC_STATUS_IMPOSSIBLE; break;
          case kOutsideEnvelope: st = m.opt.strict ? RSC_STATUS_EXTRAPOLATION_FALLBACK : RSC_STATUS_EXTRAPOLATING; break;
          default: st = RSC_STATUS_ACTIVE;
        }
      }
      out_st[c] = st;
      if (w != kOk && first_win < 0) { first_win = c; first_win_w = w; }
      nbad += (w != kOk || m.bad_now[c]) ? 1 : 0;
      if (st == RSC_STATUS_ACTIVE || st == RSC_STATUS_EXTRAPOLATING) m.active.push_back(c);
    }
    // The diagnostic: the first column with a problem in its current drivers or in its window.
    if (first_now >= 0 && (first_win < 0 || first_now <= first_win)) {
      diag = m.describe_problem(first_now, first_now_v, first_now_x, first_now_k, nbad, "in the current step's drivers");
    } else if (first_win >= 0) {
      int v = 0;
      double x = 0;
      std::string where;
      if (m.locate_in_window(first_win, first_win_w, t, ref, future, &v, &x, &where))
        diag = m.describe_problem(first_win, v, x, first_win_w, nbad, where);
    }

    // 3. Q10 at the reference step's drivers for every column (fallback value and scalar reference).
    const bool q10_swc = m.meta.q10.form != Q10Form::Q10;
    for (int c = 0; c < ncol; ++c) {
      const int64_t s = ref >= 0 ? ref : t;  // LAGGED before the first reference step: current drivers
      const double T = m.buf[m.at(c, s, kTsoil)], W = m.buf[m.at(c, s, kSwc)];
      const bool unusable = m.cls[m.at(c, s, kTsoil)] >= kImpossible || (q10_swc && m.cls[m.at(c, s, kSwc)] >= kImpossible);
      out_r[c] = unusable ? std::nan("") : q10_predict(m.meta.q10, T, W);
      out_s[c] = 1.0;
    }

    // 4. One batched forward per chunk over the active columns.
    const int nact = static_cast<int>(m.active.size());
    int nbad_out = 0, first_bad_out = -1;
    double first_bad_out_x = 0;
    if (nact > 0) {
      const int npv = static_cast<int>(m.meta.past_vars.size());
      const int nfv = static_cast<int>(m.meta.future_vars.size());
      const int chunk = m.opt.chunk_size > 0 ? std::min(m.opt.chunk_size, nact) : nact;
      c10::InferenceMode guard;
      for (int b0 = 0; b0 < nact; b0 += chunk) {
        const int nb = std::min(chunk, nact - b0);
        torch::Tensor past = torch::empty({nb, P, npv}, torch::kFloat32);
        torch::Tensor fut = torch::empty({nb, F, F > 0 ? nfv : 0}, torch::kFloat32);
        float* pp = past.data_ptr<float>();
        float* fp = fut.data_ptr<float>();
        for (int b = 0; b < nb; ++b) {
          const int c = m.active[b0 + b];
          m.for_slots(c, ref - P + 1, ref, [&](size_t i0, size_t nrows) {
            const double* row = m.buf.data() + i0;
            for (size_t r = 0; r < nrows; ++r, row += kNVars)
              for (int k = 0; k < npv; ++k) *pp++ = static_cast<float>(row[m.meta.past_vars[k]]);
          });
          for (int i = 1; i <= F; ++i) {
            for (int k = 0; k < nfv; ++k) {
              const int v = m.meta.future_vars[k];
              double x;
              if (m.opt.policy == RSC_POLICY_LAGGED) {
                x = m.buf[m.at(c, ref + i, v)];
              } else if (m.opt.policy == RSC_POLICY_SUPPLIED) {
                x = future[v][static_cast<size_t>(c) * F + (i - 1)];
              } else {  // PERSISTENCE: yesterday's cycle shifted to today's level
                const int64_t src = t - m.day_steps + ((i - 1) % m.day_steps) + 1;
                x = m.buf[m.at(c, src, v)];
                if (v != kPrecip) {
                  x += m.buf[m.at(c, t, v)] - m.buf[m.at(c, t - m.day_steps, v)];
                  x = std::min(std::max(x, m.phys[v].min), m.phys[v].max);
                }
              }
              *fp++ = static_cast<float>(x);
            }
          }
        }
        // With chunk_size > 0 every forward call has exactly chunk_call_rows() rows (chunk_size rounded
        // up to a multiple of kCallRowMultiple; the chunk padded with copies of its last row): libtorch's
        // float32 kernels are chosen by batch size and round differently for different sizes (measured:
        // 1e-7 relative between 2 and 4 rows, and between 1 and 2), and within one size the rows that
        // fall in a vector loop's scalar tail round differently from the others (measured on AVX-512 for
        // a kg_lstm at 5, 7, 10, ... 69 rows, none at 64, 96, 128, 192, 256). Padded calls have no such
        // tail, so a column's value is independent of how many columns are active and of its row: the
        // same with 1 or N MPI ranks, any mask, any number of columns, where the load probe
        // (probe_window_rows_independent) finds the module's rows independent.
        const int64_t rows = m.opt.chunk_size > 0 ? m.chunk_call_rows() : nb;
        if (rows > nb) {
          past = torch::cat({past, past.narrow(0, nb - 1, 1).expand({rows - nb, P, npv})});
          fut = torch::cat({fut, fut.narrow(0, nb - 1, 1).expand({rows - nb, F, fut.size(2)})});
        }
        torch::Tensor out;
        try {
          out = m.forward(past, fut);
          if (!out.is_floating_point() && out.scalar_type() != torch::kBool && !out.is_complex())
            out = out.to(torch::kFloat64);
          if (out.is_complex() || out.scalar_type() == torch::kBool)
            throw CoreError(RSC_E_MODEL, std::string("step: the model returned dtype ") +
                                             c10::toString(out.scalar_type()) + ", expected floating point");
          out = out.to(torch::kFloat64).contiguous();
        } catch (const CoreError&) {
          throw;
        } catch (const c10::Error& e) {
          throw CoreError(RSC_E_MODEL, "step: the model's forward failed: " + one_line_error(e.what_without_backtrace()));
        } catch (const std::bad_alloc&) {
          throw;
        } catch (const std::exception& e) {  // torch::jit::JITException (a TorchScript `raise`), others
          throw CoreError(RSC_E_MODEL, "step: the model's forward failed: " + one_line_error(e.what()));
        }
        if (out.dim() != 1 || out.size(0) != rows)
          throw CoreError(RSC_E_MODEL, "step: the model returned shape " + c10::str(out.sizes()) + ", expected [" +
                                           std::to_string(rows) + "]");
        const double* o = out.data_ptr<double>();
        for (int b = 0; b < nb; ++b) {
          const int c = m.active[b0 + b];
          const double y = o[b];
          if (!std::isfinite(y) || y < 0.0) {  // never an ACTIVE value: Q10 fallback, counted, named
            out_st[c] = RSC_STATUS_BAD_OUTPUT;
            if (nbad_out++ == 0) { first_bad_out = c; first_bad_out_x = y; }
            continue;  // out_r[c] keeps the Q10 value, out_s[c] = 1
          }
          const double q = out_r[c];
          out_r[c] = y;
          out_s[c] = (std::isfinite(q) && q > kQ10RefMin) ? y / q : 1.0;
        }
      }
    }
    if (nbad_out > 0) {
      std::ostringstream o;
      if (!diag.empty()) o << diag << "; ";
      else o << "step " << t << ": ";
      o << nbad_out << " column(s) with a non-finite or negative network output (status BAD_OUTPUT, Q10 "
        << "fallback); first: column " << first_bad_out << " rsoil = " << fmt(first_bad_out_x) << " umol m-2 s-1";
      diag = o.str();
    }
  } catch (...) {
    for (int c = 0; c < ncol; ++c)
      for (int v = 0; v < kNVars; ++v) {
        const size_t i = m.at(c, t, v);
        m.buf[i] = m.undo_buf[static_cast<size_t>(c) * kNVars + v];
        m.cls[i] = m.undo_cls[static_cast<size_t>(c) * kNVars + v];
      }
    throw;
  }
  // Commit (nothing below can fail).
  m.commit(out_r, out_s, out_st, &diag, rsoil_umol_m2_s, rsoil_gc_m2_s, resp_scalar, status);
  m.stepping_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
}
// ---------------------------------------------------------------------------------------------------
// Restart state (in the host's byte order; a blob is for the same machine kind). Window models,
// layout version 2:
//   char[8] "RSCSTATE" | u32 layout_version | u32 header bytes (=112) | char[64] model_id (NUL padded)
//   | i32 ncol | i32 policy | i32 strict | i32 capacity | i32 past_steps | i32 future_steps
//   | i64 steps_taken | i64 counts[8] | i32 mask[ncol] | f64 buffer[ncol][capacity][3] (tsoil, swc,
//   precip; slot = step % capacity) | u64 FNV-1a checksum of all preceding bytes.
// Streaming models, layout version 3: the same header with i32 state_size | i32 spinup_steps |
//   i32 n_past_vars in place of capacity | past_steps | future_steps, and f32 state[ncol][state_size]
//   (the module's state, bytes as they are) in place of the ring buffer.
// A blob of the other kind of model is refused naming layout_version.
// Version 1 had counts[7] (before status BAD_OUTPUT); it is refused with a message saying so.
// On put every field is range-checked, not only the checksum (which anyone can recompute): see
// state_put. Value classes are recomputed from the buffer (they depend only on values and metadata).
// ---------------------------------------------------------------------------------------------------
namespace {
constexpr size_t kHeaderBytes = 8 + 4 + 4 + 64 + 6 * 4 + 8;
uint64_t fnv1a(const uint8_t* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) { h ^= p[i]; h *= 1099511628211ull; }
  return h;
}
struct Writer {
  std::vector<uint8_t>& out;
  template <class T> void put(const T& x) {
    const auto* p = reinterpret_cast<const uint8_t*>(&x);
    out.insert(out.end(), p, p + sizeof(T));
  }
  void bytes(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  }
};
}  // namespace

size_t Coupler::state_size() const {
  const Impl& m = *impl_;
  const size_t ncol = static_cast<size_t>(m.opt.ncol);
  const size_t body = m.streaming ? sizeof(float) * ncol * m.S : sizeof(double) * ncol * m.cap * kNVars;
  return kHeaderBytes + 8 * RSC_NSTATUS + 4 * ncol + body + 8;
}


std::vector<uint8_t> Coupler::state_get() const {
  const Impl& m = *impl_;
  std::vector<uint8_t> out;
  out.reserve(state_size());
  Writer w{out};
  w.bytes("RSCSTATE", 8);
  w.put(m.streaming ? kStreamingStateLayoutVersion : kStateLayoutVersion);
  w.put(static_cast<uint32_t>(kHeaderBytes));
  char id[64] = {0};
  std::memcpy(id, m.meta.model_id.data(), std::min<size_t>(m.meta.model_id.size(), 64));
  w.bytes(id, 64);
  for (int32_t x : {m.opt.ncol, m.opt.policy, static_cast<int>(m.opt.strict)}) w.put(x);
  for (const SetupField& f : m.setup_fields()) w.put(f.value);
  w.put(static_cast<int64_t>(m.steps));
  for (int64_t c : m.counts) w.put(c);
  for (int x : m.mask) w.put(static_cast<int32_t>(x));
  if (m.streaming) w.bytes(m.state.data(), m.state.size() * sizeof(float));
  else w.bytes(m.buf.data(), m.buf.size() * sizeof(double));
  w.put(fnv1a(out.data(), out.size()));
  return out;
}

void Coupler::state_put(const uint8_t* data, size_t nbytes) {
  Impl& m = *impl_;
  auto fail = [](const std::string& what) { throw CoreError(RSC_E_STATE, "state_put: " + what); };
  if (!data) throw CoreError(RSC_E_NULL_POINTER, "state_put: buffer is NULL");
  if (nbytes < kHeaderBytes + 8) fail("blob of " + std::to_string(nbytes) + " bytes is too short for a header");
  if (std::memcmp(data, "RSCSTATE", 8) != 0) fail("magic: not an rsoil_couple state blob");
  size_t off = 8;
  auto get = [&](auto& x) { std::memcpy(&x, data + off, sizeof(x)); off += sizeof(x); };
  uint32_t version = 0, header = 0;
  get(version);
  get(header);
  if (version == 1)
    fail("layout_version: 1 is an older layout (7 status counters, before status BAD_OUTPUT); this core "
         "reads layout version " + std::to_string(kStateLayoutVersion) +
         " only: restart from a run made with this core version");
  if (version == kStateLayoutVersion && m.streaming)
    fail("layout_version: 2 is the state of a window model (driver ring buffers); this coupler runs a streaming "
         "model, whose state has layout version 3: the blob is from another kind of model");
  if (version == kStreamingStateLayoutVersion && !m.streaming)
    fail("layout_version: 3 is the state of a streaming model; this coupler runs a window model, whose state has "
         "layout version 2: the blob is from another kind of model");
  if (version != kStateLayoutVersion && version != kStreamingStateLayoutVersion)
    fail("layout_version: " + std::to_string(version) + " (this core reads " + std::to_string(kStateLayoutVersion) +
         " for window models and " + std::to_string(kStreamingStateLayoutVersion) + " for streaming models)");
  if (header != kHeaderBytes) fail("header size " + std::to_string(header) + " does not match layout version");
  char id[65] = {0};
  std::memcpy(id, data + off, 64);
  off += 64;
  if (m.meta.model_id != id) fail("model_id: blob is for model " + printable(id) + ", this coupler runs " + m.meta.model_id);
  int32_t ncol, policy, strict;
  get(ncol); get(policy); get(strict);
  if (ncol != m.opt.ncol) fail("ncol: blob has " + std::to_string(ncol) + " columns, this coupler " + std::to_string(m.opt.ncol));
  if (policy != m.opt.policy) fail("policy: blob has " + std::to_string(policy) + ", this coupler " + std::to_string(m.opt.policy));
  if (strict != 0 && strict != 1) fail("strict: " + std::to_string(strict) + " is not 0 or 1");
  if ((strict != 0) != m.opt.strict) fail("strict: blob has " + std::to_string(strict) + ", this coupler " + std::to_string(m.opt.strict));
  for (const SetupField& f : m.setup_fields()) {  // capacity, past_steps, future_steps (layout 3: state_size, ...)
    int32_t x;
    get(x);
    if (x != f.value) fail(std::string(f.name) + ": blob has " + std::to_string(x) + ", this coupler " + std::to_string(f.value));
  }
  if (nbytes != state_size()) fail("size: blob has " + std::to_string(nbytes) + " bytes, expected " + std::to_string(state_size()));
  uint64_t sum;
  std::memcpy(&sum, data + nbytes - 8, 8);
  if (sum != fnv1a(data, nbytes - 8)) fail("checksum mismatch (blob corrupted or truncated)");
  // The checksum only catches accidents; a blob may be edited and re-summed. So every field's range
  // is checked too: nothing below may let the ring index arithmetic (step % capacity, step +- window
  // lengths) or the counters overflow.
  int64_t steps;
  get(steps);
  if (steps < 0) fail("steps_taken: " + std::to_string(steps) + " is negative");
  if (steps > kMaxStepsTaken)
    fail("steps_taken: " + std::to_string(steps) + " is larger than the largest supported count 2^53 = " +
         std::to_string(kMaxStepsTaken));
  std::array<int64_t, RSC_NSTATUS> counts;
  // Every step adds one count per column: the counts sum to steps_taken * ncol (<= 2^53 * 2^31 < 2^127).
  unsigned __int128 total = 0;
  for (int s = 0; s < RSC_NSTATUS; ++s) {
    get(counts[s]);
    if (counts[s] < 0) fail("counts[" + std::to_string(s) + "]: " + std::to_string(counts[s]) + " is negative");
    total += static_cast<unsigned __int128>(counts[s]);
  }
  if (total != static_cast<unsigned __int128>(steps) * static_cast<unsigned __int128>(ncol))
    fail("counts: the per-status counts do not sum to steps_taken * ncol = " + std::to_string(steps) + " * " +
         std::to_string(ncol));
  std::vector<int> mask(ncol);
  for (int c = 0; c < ncol; ++c) {
    int32_t v;
    get(v);
    if (v != 0 && v != 1) fail("mask[" + std::to_string(c) + "]: " + std::to_string(v) + " is not 0 or 1");
    mask[c] = v;
  }
  if (m.streaming) {  // the module's state: any float is legal, copied bit for bit
    std::vector<float> state(m.state.size());
    std::memcpy(state.data(), data + off, state.size() * sizeof(float));
    m.steps = steps;  // commit (nothing above touched the coupler)
    m.counts = counts;
    m.mask = std::move(mask);
    m.state = std::move(state);
    m.diag.clear();
    return;
  }
  // Ring values: any double is a legal driver value (NaN = missing); their classes are recomputed.
  std::vector<double> buf(m.buf.size());
  std::memcpy(buf.data(), data + off, buf.size() * sizeof(double));
  // Commit (nothing above touched the coupler).
  m.steps = steps;
  m.counts = counts;
  m.mask = std::move(mask);
  m.buf = std::move(buf);
  for (int c = 0; c < m.opt.ncol; ++c)
    for (int s = 0; s < m.cap; ++s)
      for (int v = 0; v < kNVars; ++v) {
        const size_t i = (static_cast<size_t>(c) * m.cap + s) * kNVars + v;
        m.cls[i] = m.classify(v, m.buf[i]);
      }
  m.diag.clear();
}

}  // namespace rsc
