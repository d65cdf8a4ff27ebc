// rsoil_meta.json (schema version 1, docs/model_format.md): parsed and validated.
//
// The C++ twin of rsoil_couple.export.validate_meta: every rule of docs/model_format.md is checked and
// a violation throws MetaError whose message names the field ("rsoil_meta.json: past_steps: ...").
#pragma once

#include <array>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace rsc {

struct MetaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The canonical driver variables, in the order the core stores them.
enum Var : int { kTsoil = 0, kSwc = 1, kPrecip = 2 };
constexpr int kNVars = 3;
extern const char* const kVarNames[kNVars];  // "tsoil", "swc", "precip"
extern const char* const kVarUnits[kNVars];  // "degC", "m3 m-3", "mm"

struct Range {
  double min = 0.0;
  double max = 0.0;
};

enum class Q10Form { Q10, Q10Swc, LogisticPower };

struct FallbackQ10 {
  Q10Form form = Q10Form::Q10;
  std::string form_name;
  std::map<std::string, double> params;  // a, b, c[, d] by name (as in the file)
  double a = 0, b = 0, c = 0, d = 0;     // the same, for the hot path (unused ones 0)
  double tref_c = 10.0;                  // reference temperature of the q10 forms [°C]
  bool swc_percent = false;              // swc_units == "percent"
};

struct ModelMeta {
  int schema_version = 0;
  std::string model_kind;
  std::string model_id;
  double step_seconds = 0.0;
  int past_steps = 0;
  int future_steps = 0;
  std::vector<int> past_vars;    // indices into Var, in the module's input order
  std::vector<int> future_vars;  // idem
  std::array<bool, kNVars> used{};             // variable in past or future inputs
  std::array<Range, kNVars> envelope{};        // valid where used[v]
  std::array<Range, kNVars> physical_range{};  // valid where used[v]
  FallbackQ10 q10;
  std::string json;  // the raw text, for callers that want more fields
};

// Parse and validate the text of rsoil_meta.json. Throws MetaError naming the field.
ModelMeta parse_model_meta(const std::string& text);

// The fallback Q10 (rsoil_couple.q10.predict) at one column's drivers [µmol m-2 s-1].
double q10_predict(const FallbackQ10& q, double tsoil_c, double swc_m3m3);

}  // namespace rsc
