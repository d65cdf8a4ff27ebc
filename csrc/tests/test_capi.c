/* CTest: the C API as a C host sees it (no C++ in this file).
 * Usage: test_capi_c MODEL_PATH [NAN_MODEL RAISING_MODEL]
 *   MODEL_PATH written by rsoil_couple.export.example_model; the optional two are hand-made adversarial
 *   modules (tests/test_adversarial_core.py writes them and runs this program with them).
 * Checks numbers: spin-up length, units (gC = 12.011e-6 x umol), a K-for-degC mix-up flagged
 * IMPOSSIBLE with NaN, counters, bit-for-bit restart, and every error path's code and message. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsoil_couple.h"

static int failures = 0;
#define CHECK(cond, ...)                                         \
  do {                                                           \
    if (!(cond)) {                                               \
      ++failures;                                                \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                              \
      fprintf(stderr, "\n");                                     \
    }                                                            \
  } while (0)

#define NCOL 3

/* Smooth diel drivers of step s for column c, in the C API's units. */
static double tsoil_k(int c, long s) { return 273.15 + 24.0 + 4.0 * sin(6.283185307179586 * s / 48.0) + 0.5 * c; }
static double swc(int c, long s) { return 0.08 + 0.002 * c + 0.0001 * (s % 10); }
static double precip_mm_s(int c, long s) { return (s % 40 == 0 && c == 1) ? 1e-3 : 0.0; }

typedef struct {
  double rsoil[NCOL], gc[NCOL], scalar[NCOL];
  int status[NCOL];
} out_t;

/* One step at index s; column `kelvin_as_c` (or -1) gets degC where K is expected. */
static int step(rsc_coupler* h, long s, int F, int kelvin_as_c, out_t* o) {
  double t[NCOL], w[NCOL], p[NCOL];
  double* ft = malloc(sizeof(double) * NCOL * (F > 0 ? F : 1));
  for (int c = 0; c < NCOL; ++c) {
    t[c] = c == kelvin_as_c ? tsoil_k(c, s) - 273.15 : tsoil_k(c, s);
    w[c] = swc(c, s);
    p[c] = precip_mm_s(c, s);
    for (int k = 0; k < F; ++k) ft[c * F + k] = tsoil_k(c, s + 1 + k); /* [ncol][future_steps] */
  }
  int rc = rsc_coupler_step(h, NCOL, t, w, p, F > 0 ? ft : NULL, NULL, NULL, o->rsoil, o->gc, o->scalar, o->status);
  free(ft);
  return rc;
}

/* FNV-1a over n bytes, as the core's state checksum (csrc/coupler.cpp), to re-seal an edited blob. */
static unsigned long long fnv1a(const unsigned char* p, size_t n) {
  unsigned long long h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ULL;
  }
  return h;
}

/* F8: a blob whose fields are edited and whose checksum is recomputed is refused (RSC_E_STATE naming the
 * field), and the coupler is unchanged. Offsets of layout version 2 (docs/core.md). */
static void check_blob_fields(rsc_coupler* h) {
  size_t n = 0;
  CHECK(rsc_coupler_state_size(h, &n) == RSC_OK, "state size");
  unsigned char *good = malloc(n), *bad = malloc(n), *after = malloc(n);
  CHECK(rsc_coupler_state_get(h, good, n) == RSC_OK, "state get");
  unsigned int version = 0;
  memcpy(&version, good + 8, 4);
  CHECK(version == 2, "layout version %u", version);
  const struct {
    size_t off;
    int size;
    long long value;
    const char* field;
  } cases[] = {
      {104, 8, 0x7fffffffffffffffLL, "steps_taken"}, /* wrapped the step count, negative ring index */
      {104, 8, -1, "steps_taken"},
      {104, 8, (1LL << 53) + 1, "steps_taken"},
      {112 + 8 * 2, 8, -5, "counts[2]"},
      {112 + 8 * 0, 8, 1LL << 62, "counts"},
      {112 + 8 * RSC_NSTATUS + 4 * 1, 4, 7, "mask[1]"},
      {88, 4, 3, "strict"},
      {92, 4, 1, "capacity"},
      {8, 4, 1, "layout_version"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; ++k) {
    memcpy(bad, good, n);
    if (cases[k].size == 8) {
      memcpy(bad + cases[k].off, &cases[k].value, 8);
    } else {
      int v = (int)cases[k].value;
      memcpy(bad + cases[k].off, &v, 4);
    }
    unsigned long long sum = fnv1a(bad, n - 8);
    memcpy(bad + n - 8, &sum, 8);
    CHECK(rsc_coupler_state_put(h, bad, n) == RSC_E_STATE, "edited %s accepted", cases[k].field);
    CHECK(strstr(rsc_last_error_message(), cases[k].field) != NULL, "message names %s: %s", cases[k].field,
          rsc_last_error_message());
    CHECK(rsc_coupler_state_get(h, after, n) == RSC_OK && memcmp(after, good, n) == 0, "state unchanged (%s)",
          cases[k].field);
  }
  free(good);
  free(bad);
  free(after);
}

/* F3: a network returning NaN gives status BAD_OUTPUT with the Q10 value, never an ACTIVE NaN.
 * F6: a forward that raises is RSC_E_MODEL with a one-line message; outputs and state untouched. */
static void check_adversarial(const char* nan_model, const char* raise_model) {
  rsc_coupler* h = NULL;
  int P = 0, F = 0;
  out_t o;
  CHECK(rsc_coupler_create(nan_model, NCOL, RSC_POLICY_SUPPLIED, 0, 0, 0, &h) == RSC_OK, "create NaN model: %s",
        rsc_last_error_message());
  if (!h) return;
  rsc_coupler_info(h, &P, &F, NULL, NULL, NULL, NULL, NULL, NULL);
  for (long s = 0; s <= P; ++s) CHECK(step(h, s, F, -1, &o) == RSC_OK, "NaN model step %ld", s);
  for (int c = 0; c < NCOL; ++c)
    CHECK(o.status[c] == RSC_STATUS_BAD_OUTPUT && isfinite(o.rsoil[c]) && o.rsoil[c] > 0 && o.scalar[c] == 1.0,
          "NaN output: col %d status %d rsoil %g", c, o.status[c], o.rsoil[c]);
  long long counts[RSC_NSTATUS];
  CHECK(rsc_coupler_counters(h, counts) == RSC_OK && counts[RSC_STATUS_BAD_OUTPUT] == 2 * NCOL, "BAD_OUTPUT count %lld",
        counts[RSC_STATUS_BAD_OUTPUT]);
  char msg[1024];
  CHECK(rsc_coupler_diagnostic(h, msg, sizeof msg, NULL) == RSC_OK && strstr(msg, "BAD_OUTPUT") != NULL, "diagnostic: %s", msg);
  rsc_coupler_destroy(&h);

  CHECK(rsc_coupler_create(raise_model, NCOL, RSC_POLICY_SUPPLIED, 0, 0, 0, &h) == RSC_OK, "create raising model: %s",
        rsc_last_error_message());
  if (!h) return;
  for (long s = 0; s < P - 1; ++s) CHECK(step(h, s, F, -1, &o) == RSC_OK, "raising model spin-up step %ld", s);
  size_t n = 0;
  rsc_coupler_state_size(h, &n);
  unsigned char *before = malloc(n), *after = malloc(n);
  rsc_coupler_state_get(h, before, n);
  for (int c = 0; c < NCOL; ++c) o.rsoil[c] = o.gc[c] = o.scalar[c] = -99.0, o.status[c] = -99;
  CHECK(step(h, P - 1, F, -1, &o) == RSC_E_MODEL, "raising forward: %s", rsc_last_error_message());
  const char* m = rsc_last_error_message();
  CHECK(strchr(m, '\n') == NULL && strstr(m, "boom") != NULL, "one-line message: %s", m);
  rsc_coupler_state_get(h, after, n);
  CHECK(memcmp(before, after, n) == 0, "state unchanged by a failed step");
  for (int c = 0; c < NCOL; ++c)
    CHECK(o.rsoil[c] == -99.0 && o.gc[c] == -99.0 && o.scalar[c] == -99.0 && o.status[c] == -99, "outputs untouched");
  long long taken = -1;
  CHECK(rsc_coupler_info(h, NULL, NULL, NULL, NULL, NULL, NULL, NULL, &taken) == RSC_OK && taken == P - 1, "steps %lld", taken);
  free(before);
  free(after);
  rsc_coupler_destroy(&h);
  printf("test_capi_c: adversarial models: checked (BAD_OUTPUT fallback, transactional RSC_E_MODEL)\n");
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL_PATH\n", argv[0]);
    return 2;
  }
  const char* model = argv[1];
  rsc_coupler* h = NULL;
  char msg[1024];

  /* Errors at creation. */
  CHECK(rsc_coupler_create("/nonexistent/model.pt", NCOL, RSC_POLICY_SUPPLIED, 0, 0, 0, &h) == RSC_E_FILE, "missing file");
  rsc_last_error(msg, sizeof msg);
  CHECK(strstr(msg, "/nonexistent/model.pt") != NULL, "message names the path: %s", msg);
  CHECK(h == NULL, "no handle on failure");
  CHECK(rsc_coupler_create(model, NCOL, 7, 0, 0, 0, &h) == RSC_E_INVALID_ARGUMENT, "bad policy");
  CHECK(rsc_coupler_create(model, 0, RSC_POLICY_SUPPLIED, 0, 0, 0, &h) == RSC_E_INVALID_ARGUMENT, "ncol 0");
  CHECK(rsc_coupler_create(NULL, NCOL, RSC_POLICY_SUPPLIED, 0, 0, 0, &h) == RSC_E_NULL_POINTER, "NULL path");
  CHECK(rsc_coupler_create(model, NCOL, RSC_POLICY_SUPPLIED, 0, 0, 0, NULL) == RSC_E_NULL_POINTER, "NULL out");

  int rc = rsc_coupler_create(model, NCOL, RSC_POLICY_SUPPLIED, 0, 0, 1, &h);
  rsc_last_error(msg, sizeof msg);
  CHECK(rc == RSC_OK, "create: %s", msg);
  if (rc != RSC_OK) return 1;
  int P = 0, F = 0, spin = 0, lag = -1, nfv = 0, fmask = 0;
  double dt = 0;
  long long taken = -1;
  CHECK(rsc_coupler_info(h, &P, &F, &dt, &spin, &lag, &nfv, &fmask, &taken) == RSC_OK, "info");
  CHECK(P > 0 && dt > 0 && spin == P && lag == 0 && taken == 0, "P=%d dt=%g spin=%d lag=%d", P, dt, spin, lag);
  CHECK(F == 0 || (fmask & 1), "future tsoil expected, mask %d", fmask);
  char id[65];
  CHECK(rsc_coupler_model_id(h, id, sizeof id) == RSC_OK && strlen(id) > 0, "model id");
  CHECK(rsc_coupler_model_id(h, id, 2) == RSC_E_BUFFER_TOO_SMALL, "model id small buffer");

  /* Call errors leave the state unchanged. */
  out_t o;
  double x[NCOL] = {300, 300, 300};
  CHECK(rsc_coupler_step(h, NCOL + 1, x, x, x, NULL, NULL, NULL, o.rsoil, o.gc, o.scalar, o.status) == RSC_E_INVALID_ARGUMENT, "wrong ncol");
  rsc_last_error(msg, sizeof msg);
  CHECK(strstr(msg, "ncol") != NULL, "message names ncol: %s", msg);
  CHECK(rsc_coupler_step(h, NCOL, NULL, x, x, NULL, NULL, NULL, o.rsoil, o.gc, o.scalar, o.status) == RSC_E_NULL_POINTER, "NULL tsoil");
  rsc_last_error(msg, sizeof msg);
  CHECK(strstr(msg, "tsoil_k") != NULL, "message names tsoil_k: %s", msg);
  CHECK(rsc_coupler_step(h, NCOL, x, x, x, NULL, NULL, NULL, NULL, o.gc, o.scalar, o.status) == RSC_E_NULL_POINTER, "NULL output");
  if (F > 0) {
    CHECK(rsc_coupler_step(h, NCOL, x, x, x, NULL, NULL, NULL, o.rsoil, o.gc, o.scalar, o.status) == RSC_E_NULL_POINTER, "supplied without future");
    rsc_last_error(msg, sizeof msg);
    CHECK(strstr(msg, "future_tsoil") != NULL, "message names future_tsoil: %s", msg);
  }
  CHECK(rsc_coupler_info(h, NULL, NULL, NULL, NULL, NULL, NULL, NULL, &taken) == RSC_OK && taken == 0, "no step taken: %lld", taken);

  /* 2N steps; column 2 gets degC for K from step 2N-3 on (a host unit mix-up). */
  const int N = P + 6;
  long long seen[RSC_NSTATUS] = {0};
  out_t full[2 * P + 12];
  for (long s = 0; s < 2 * N; ++s) {
    CHECK(step(h, s, F, s >= 2 * N - 3 ? 2 : -1, &full[s]) == RSC_OK, "step %ld: %s", s, rsc_last_error_message());
    for (int c = 0; c < NCOL; ++c) {
      const out_t* r = &full[s];
      seen[r->status[c]]++;
      if (s < P - 1) CHECK(r->status[c] == RSC_STATUS_SPINUP, "step %ld col %d status %d", s, c, r->status[c]);
      if (c < 2 && s >= P - 1)
        CHECK(r->status[c] == RSC_STATUS_ACTIVE || r->status[c] == RSC_STATUS_EXTRAPOLATING, "step %ld col %d status %d", s, c, r->status[c]);
      if (c == 2 && s >= 2 * N - 3) {
        CHECK(r->status[c] == RSC_STATUS_IMPOSSIBLE && isnan(r->rsoil[c]) && r->scalar[c] == 1.0, "K-for-degC: status %d rsoil %g", r->status[c], r->rsoil[c]);
      } else {
        CHECK(isfinite(r->rsoil[c]) && r->rsoil[c] > 0, "step %ld col %d rsoil %g", s, c, r->rsoil[c]);
        CHECK(r->gc[c] == r->rsoil[c] * 12.011e-6, "gC conversion");
      }
      if (r->status[c] == RSC_STATUS_SPINUP) CHECK(r->scalar[c] == 1.0, "fallback scalar 1");
    }
  }
  size_t dlen = 0;
  CHECK(rsc_coupler_diagnostic(h, msg, sizeof msg, &dlen) == RSC_OK && dlen > 0, "diagnostic after bad step");
  CHECK(strstr(msg, "column 2 tsoil") != NULL && strstr(msg, "physical range") != NULL, "diagnostic: %s", msg);
  long long counts[RSC_NSTATUS];
  CHECK(rsc_coupler_counters(h, counts) == RSC_OK, "counters");
  for (int s = 0; s < RSC_NSTATUS; ++s) CHECK(counts[s] == seen[s], "counter %d: %lld vs %lld", s, counts[s], seen[s]);
  CHECK(counts[RSC_STATUS_SPINUP] == (long long)(P - 1) * NCOL, "spin-up count %lld", counts[RSC_STATUS_SPINUP]);

  /* Restart: N steps, state out, a new coupler, state in, N steps == the unbroken run, bit for bit. */
  rsc_coupler *a = NULL, *b = NULL;
  CHECK(rsc_coupler_create(model, NCOL, RSC_POLICY_SUPPLIED, 0, 0, 0, &a) == RSC_OK, "create a");
  for (long s = 0; s < N; ++s) CHECK(step(a, s, F, -1, &o) == RSC_OK, "a step");
  size_t nbytes = 0;
  CHECK(rsc_coupler_state_size(a, &nbytes) == RSC_OK && nbytes > 0, "state size");
  unsigned char* blob = malloc(nbytes);
  CHECK(rsc_coupler_state_get(a, blob, nbytes - 1) == RSC_E_BUFFER_TOO_SMALL, "state small buffer");
  CHECK(rsc_coupler_state_get(a, blob, nbytes) == RSC_OK, "state get");
  CHECK(rsc_coupler_destroy(&a) == RSC_OK && a == NULL, "destroy a");
  CHECK(rsc_coupler_create(model, NCOL, RSC_POLICY_SUPPLIED, 0, 0, 0, &b) == RSC_OK, "create b");
  blob[nbytes / 2] ^= 1;
  CHECK(rsc_coupler_state_put(b, blob, nbytes) == RSC_E_STATE, "corrupted blob refused");
  blob[nbytes / 2] ^= 1;
  CHECK(rsc_coupler_state_put(b, blob, nbytes) == RSC_OK, "state put: %s", rsc_last_error_message());
  int bitwise = 1;
  for (long s = N; s < 2 * N; ++s) {
    CHECK(step(b, s, F, s >= 2 * N - 3 ? 2 : -1, &o) == RSC_OK, "b step");
    bitwise &= memcmp(o.rsoil, full[s].rsoil, sizeof o.rsoil) == 0 && memcmp(o.status, full[s].status, sizeof o.status) == 0 &&
               memcmp(o.scalar, full[s].scalar, sizeof o.scalar) == 0;
  }
  CHECK(bitwise, "restart is bit-for-bit");
  long long cb[RSC_NSTATUS];
  CHECK(rsc_coupler_counters(b, cb) == RSC_OK && memcmp(cb, counts, sizeof cb) == 0, "counters restored and continued");
  free(blob);

  check_blob_fields(b);

  /* Step after destroy, destroy twice. */
  rsc_coupler* stale = h;
  CHECK(rsc_coupler_destroy(&h) == RSC_OK && h == NULL, "destroy");
  CHECK(rsc_coupler_destroy(&h) == RSC_OK, "destroy twice");
  CHECK(step(stale, 0, F, -1, &o) == RSC_E_BAD_HANDLE, "step after destroy");
  rsc_last_error(msg, sizeof msg);
  CHECK(strstr(msg, "invalid handle") != NULL, "message: %s", msg);
  CHECK(rsc_coupler_step(NULL, NCOL, x, x, x, NULL, NULL, NULL, o.rsoil, o.gc, o.scalar, o.status) == RSC_E_BAD_HANDLE, "NULL handle");
  rsc_coupler_destroy(&b);

  /* Optional: argv[2] a model whose forward returns NaN, argv[3] one that raises with 3 rows
   * (tests/test_adversarial_core.py::test_capi_c_program_with_adversarial_models passes them). */
  if (argc >= 4) check_adversarial(argv[2], argv[3]);

  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("test_capi_c: all checks passed (P=%d F=%d step=%gs, %d columns, %d steps, restart bit-for-bit)\n", P, F, dt, NCOL, 2 * N);
  return 0;
}
