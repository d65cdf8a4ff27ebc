// The C API of rsoil_couple.h over rsc::Coupler: handle registry, unit conversion at the boundary
// (K -> °C, mm s-1 -> mm per step), and one pair of macros that turns every exception into a result
// code and a per-thread message.
#include <c10/util/Exception.h>

#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <unordered_set>
#include <vector>

#include "coupler.hpp"
#include "rsoil_couple.h"

struct rsc_coupler {
  std::unique_ptr<rsc::Coupler> core;
  std::vector<double> tsoil_c, precip_mm;              // converted current drivers
  std::array<std::vector<double>, rsc::kNVars> future;  // converted future drivers
};

namespace {

constexpr double kKelvinOffset = 273.15;

thread_local std::string g_last_error;

std::mutex g_registry_mutex;
std::unordered_set<const rsc_coupler*>& registry() {
  static auto* live = new std::unordered_set<const rsc_coupler*>();  // never destroyed: safe at exit
  return *live;
}

int fail(int code, const std::string& msg) {
  g_last_error = msg;
  return code;
}

// Validates the handle and takes the coupler's "in use" flag in one step under the registry mutex, so
// that rsc_coupler_destroy (which takes the flag under the same mutex before erasing the handle)
// can never free a coupler another thread is inside. Returns RSC_OK, RSC_E_BAD_HANDLE or RSC_E_BUSY.
int acquire(const rsc_coupler* h) {
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  if (!h || registry().count(h) == 0) return RSC_E_BAD_HANDLE;
  return rsc::InUse::try_take(*h->core) ? RSC_OK : RSC_E_BUSY;
}

// Releases the flag taken by RSC_CHECK_HANDLE when the entry point returns (any path).
struct Release {
  const rsc_coupler* h;
  ~Release() { rsc::InUse::release(*h->core); }
};

void copy_out(const std::string& s, char* buf, size_t buflen) {
  if (!buf || buflen == 0) return;
  const size_t n = std::min(s.size(), buflen - 1);
  std::memcpy(buf, s.data(), n);
  buf[n] = '\0';
}

}  // namespace

// The one pair of macros every entry point is wrapped in: no exception crosses the C boundary.
#define RSC_TRY try {
#define RSC_CATCH                                                                   \
  }                                                                                 \
  catch (const rsc::CoreError& e) {                                                 \
    return fail(e.code, e.what());                                                  \
  }                                                                                 \
  catch (const c10::Error& e) {                                                     \
    return fail(RSC_E_MODEL, e.what_without_backtrace());                           \
  }                                                                                 \
  catch (const std::bad_alloc&) {                                                   \
    return fail(RSC_E_INTERNAL, "out of memory");                                   \
  }                                                                                 \
  catch (const std::exception& e) {                                                 \
    return fail(RSC_E_INTERNAL, e.what());                                          \
  }                                                                                 \
  catch (...) {                                                                     \
    return fail(RSC_E_INTERNAL, "unknown C++ exception");                           \
  }

// Validates the handle and holds the coupler's "in use" flag until the function returns.
#define RSC_CHECK_HANDLE(h, fn)                                                                   \
  if (!(h)) return fail(RSC_E_BAD_HANDLE, fn ": handle is NULL");                                 \
  switch (acquire(h)) {                                                                           \
    case RSC_OK: break;                                                                           \
    case RSC_E_BUSY: return fail(RSC_E_BUSY, std::string(fn ": ") + rsc::kBusyMessage);           \
    default: return fail(RSC_E_BAD_HANDLE, fn ": invalid handle (destroyed or never created)");   \
  }                                                                                               \
  const Release rsc_release_guard_{h}

#define RSC_CHECK_PTR(p, fn) \
  if (!(p)) return fail(RSC_E_NULL_POINTER, fn ": " #p " is NULL")

extern "C" {

const char* rsc_version(void) { return RSOIL_VERSION; }  // CMake: rsoil_couple/__init__.py

int rsc_last_error(char* buf, size_t buflen) {
  copy_out(g_last_error, buf, buflen);
  return static_cast<int>(g_last_error.size());
}

const char* rsc_last_error_message(void) { return g_last_error.c_str(); }

int rsc_coupler_create(const char* model_path, int ncol, int policy, int strict, int chunk_size, int num_threads,
                       rsc_coupler** out) {
  RSC_CHECK_PTR(out, "rsc_coupler_create");
  *out = nullptr;
  RSC_CHECK_PTR(model_path, "rsc_coupler_create");
  RSC_TRY
  rsc::Options opt;
  opt.ncol = ncol;
  opt.policy = policy;
  opt.strict = strict != 0;
  opt.chunk_size = chunk_size;
  opt.num_threads = num_threads;
  auto h = std::make_unique<rsc_coupler>();
  h->core = std::make_unique<rsc::Coupler>(model_path, opt);
  h->tsoil_c.resize(ncol);
  h->precip_mm.resize(ncol);
  const int F = h->core->meta().future_steps;
  for (int v : h->core->meta().future_vars) h->future[v].resize(static_cast<size_t>(ncol) * F);
  {
    std::lock_guard<std::mutex> lock(g_registry_mutex);
    registry().insert(h.get());
  }
  *out = h.release();
  return RSC_OK;
  RSC_CATCH
}

int rsc_coupler_destroy(rsc_coupler** h) {
  if (!h || !*h) return RSC_OK;
  {
    std::lock_guard<std::mutex> lock(g_registry_mutex);
    if (registry().count(*h) == 0) {
      *h = nullptr;
      return fail(RSC_E_BAD_HANDLE, "rsc_coupler_destroy: invalid handle (destroyed or never created)");
    }
    // A coupler another thread is inside is not destroyed (the handle stays valid). Once the flag is
    // taken here and the handle erased, no other call can reach the coupler.
    if (!rsc::InUse::try_take(*(*h)->core))
      return fail(RSC_E_BUSY, std::string("rsc_coupler_destroy: ") + rsc::kBusyMessage);
    registry().erase(*h);
  }
  RSC_TRY
  delete *h;
  *h = nullptr;
  return RSC_OK;
  RSC_CATCH
}

int rsc_coupler_set_mask(rsc_coupler* h, int ncol, const int* use_model) {
  RSC_CHECK_HANDLE(h, "rsc_coupler_set_mask");
  RSC_CHECK_PTR(use_model, "rsc_coupler_set_mask");
  RSC_TRY
  if (ncol != h->core->options().ncol)
    return fail(RSC_E_INVALID_ARGUMENT, "rsc_coupler_set_mask: ncol = " + std::to_string(ncol) +
                                            " but the coupler was created for " +
                                            std::to_string(h->core->options().ncol) + " columns");
  h->core->set_mask(use_model);
  return RSC_OK;
  RSC_CATCH
}

int rsc_coupler_step(rsc_coupler* h, int ncol, const double* tsoil_k, const double* swc_m3m3,
                     const double* precip_mm_s, const double* future_tsoil_k, const double* future_swc_m3m3,
                     const double* future_precip_mm_s, double* rsoil_umol_m2_s, double* rsoil_gc_m2_s,
                     double* resp_scalar, int* status) {
  RSC_CHECK_HANDLE(h, "rsc_coupler_step");
  RSC_CHECK_PTR(tsoil_k, "rsc_coupler_step");
  RSC_CHECK_PTR(swc_m3m3, "rsc_coupler_step");
  RSC_CHECK_PTR(precip_mm_s, "rsc_coupler_step");
  RSC_CHECK_PTR(rsoil_umol_m2_s, "rsc_coupler_step");
  RSC_CHECK_PTR(rsoil_gc_m2_s, "rsc_coupler_step");
  RSC_CHECK_PTR(resp_scalar, "rsc_coupler_step");
  RSC_CHECK_PTR(status, "rsc_coupler_step");
  RSC_TRY
  rsc::Coupler& core = *h->core;
  const int n = core.options().ncol;
  if (ncol != n)
    return fail(RSC_E_INVALID_ARGUMENT, "rsc_coupler_step: ncol = " + std::to_string(ncol) +
                                            " but the coupler was created for " + std::to_string(n) + " columns");
  const double dt = core.meta().step_seconds;
  for (int c = 0; c < n; ++c) {
    h->tsoil_c[c] = tsoil_k[c] - kKelvinOffset;
    h->precip_mm[c] = precip_mm_s[c] * dt;
  }
  const double* fin[rsc::kNVars] = {future_tsoil_k, future_swc_m3m3, future_precip_mm_s};
  std::array<const double*, rsc::kNVars> fut{fin[0], fin[1], fin[2]};
  const size_t nf = static_cast<size_t>(n) * core.meta().future_steps;
  if (nf > 0 && fin[rsc::kTsoil] && h->future[rsc::kTsoil].size() == nf) {
    for (size_t i = 0; i < nf; ++i) h->future[rsc::kTsoil][i] = fin[rsc::kTsoil][i] - kKelvinOffset;
    fut[rsc::kTsoil] = h->future[rsc::kTsoil].data();
  }
  if (nf > 0 && fin[rsc::kPrecip] && h->future[rsc::kPrecip].size() == nf) {
    for (size_t i = 0; i < nf; ++i) h->future[rsc::kPrecip][i] = fin[rsc::kPrecip][i] * dt;
    fut[rsc::kPrecip] = h->future[rsc::kPrecip].data();
  }
  core.step(h->tsoil_c.data(), swc_m3m3, h->precip_mm.data(), fut, rsoil_umol_m2_s, rsoil_gc_m2_s, resp_scalar,
            status);
  return RSC_OK;
  RSC_CATCH
}

int rsc_coupler_diagnostic(const rsc_coupler* h, char* buf, size_t buflen, size_t* len_out) {
  RSC_CHECK_HANDLE(h, "rsc_coupler_diagnostic");
  RSC_TRY
  const std::string d = h->core->diagnostic();
  copy_out(d, buf, buflen);
  if (len_out) *len_out = d.size();
  return RSC_OK;
  RSC_CATCH
}

int rsc_coupler_info(const rsc_coupler* h, int* past_steps, int* future_steps, double* step_seconds,
                     int* spinup_steps, int* lag_steps, int* n_future_vars, int* future_vars_mask,
                     long long* steps_taken) {
  RSC_CHECK_HANDLE(h, "rsc_coupler_info");
  RSC_TRY
  const rsc::Coupler& core = *h->core;
  const rsc::ModelMeta& m = core.meta();
  if (past_steps) *past_steps = m.past_steps;
  if (future_steps) *future_steps = m.future_steps;
  if (step_seconds) *step_seconds = m.step_seconds;
  if (spinup_steps) *spinup_steps = core.spinup_steps();
  if (lag_steps) *lag_steps = core.lag_steps();
  if (n_future_vars) *n_future_vars = static_cast<int>(m.future_vars.size());
  if (future_vars_mask) {
    int bits = 0;
    for (int v : m.future_vars) bits |= 1 << v;
    *future_vars_mask = bits;
  }
  if (steps_taken) *steps_taken = static_cast<long long>(core.steps_taken());
  return RSC_OK;
  RSC_CATCH
}

int rsc_coupler_rows_independent(const rsc_coupler* h, int* rows_independent) {
  RSC_CHECK_HANDLE(h, "rsc_coupler_rows_independent");
  RSC_CHECK_PTR(rows_independent, "rsc_coupler_rows_independent");
  RSC_TRY
  *rows_independent = h->core->streaming_rows_independent() ? 1 : 0;
  return RSC_OK;
  RSC_CATCH
}

int rsc_coupler_model_id(const rsc_coupler* h, char* buf, size_t buflen) {
  RSC_CHECK_HANDLE(h, "rsc_coupler_model_id");
  RSC_CHECK_PTR(buf, "rsc_coupler_model_id");
  RSC_TRY
  const std::string& id = h->core->meta().model_id;
  if (buflen < id.size() + 1)
    return fail(RSC_E_BUFFER_TOO_SMALL, "rsc_coupler_model_id: buflen = " + std::to_string(buflen) + ", need " +
                                            std::to_string(id.size() + 1));
  copy_out(id, buf, buflen);
  return RSC_OK;
  RSC_CATCH
}

int rsc_coupler_counters(const rsc_coupler* h, long long* counts) {
  RSC_CHECK_HANDLE(h, "rsc_coupler_counters");
  RSC_CHECK_PTR(counts, "rsc_coupler_counters");
  RSC_TRY
  const auto c = h->core->counters();
  for (int s = 0; s < RSC_NSTATUS; ++s) counts[s] = static_cast<long long>(c[s]);
  return RSC_OK;
  RSC_CATCH
}

int rsc_coupler_state_size(const rsc_coupler* h, size_t* nbytes) {
  RSC_CHECK_HANDLE(h, "rsc_coupler_state_size");
  RSC_CHECK_PTR(nbytes, "rsc_coupler_state_size");
  RSC_TRY
  *nbytes = h->core->state_size();
  return RSC_OK;
  RSC_CATCH
}

int rsc_coupler_state_get(const rsc_coupler* h, void* buf, size_t buflen) {
  RSC_CHECK_HANDLE(h, "rsc_coupler_state_get");
  RSC_CHECK_PTR(buf, "rsc_coupler_state_get");
  RSC_TRY
  const size_t need = h->core->state_size();
  if (buflen < need)
    return fail(RSC_E_BUFFER_TOO_SMALL, "rsc_coupler_state_get: buflen = " + std::to_string(buflen) + ", need " +
                                            std::to_string(need) + " (rsc_coupler_state_size)");
  const std::vector<uint8_t> blob = h->core->state_get();
  std::memcpy(buf, blob.data(), blob.size());
  return RSC_OK;
  RSC_CATCH
}

int rsc_coupler_state_put(rsc_coupler* h, const void* buf, size_t buflen) {
  RSC_CHECK_HANDLE(h, "rsc_coupler_state_put");
  RSC_CHECK_PTR(buf, "rsc_coupler_state_put");
  RSC_TRY
  h->core->state_put(static_cast<const uint8_t*>(buf), buflen);
  return RSC_OK;
  RSC_CATCH
}

}  // extern "C"
