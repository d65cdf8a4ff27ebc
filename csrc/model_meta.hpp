// rsoil_meta.json (schema versions 1 and 2, docs/model_format.md): parsed and validated.
//
// The C++ twin of rsoil_couple.modelfile.schema: the same JSON Schema rules and cross-field rules,
// with the names, units and Q10 forms of rsoil_couple/variables.py (the generated rsc_variables.hpp).
// A violation throws MetaError whose message names the field as a dotted path
// ("rsoil_meta.json: past_vars[1].name: ..."); tests/data/bad_meta/ holds both validators to the same
// verdict and field.
#pragma once

#include <array>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "q10.hpp"
#include "rsc_variables.hpp"  // generated from rsoil_couple/variables.py at build time

namespace rsc {

struct MetaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The canonical driver variables, in the order the core stores them (= variables.DRIVERS).
enum Var : int { kTsoil = 0, kSwc = 1, kPrecip = 2 };
constexpr int kNVars = gen::kNVars;
inline constexpr const auto& kVarNames = gen::kVarNames;  // "tsoil", "swc", "precip"
inline constexpr const auto& kVarUnits = gen::kVarUnits;  // "degC", "m3 m-3", "mm"

namespace detail {
constexpr bool same(const char* a, const char* b) { return *a == *b && (*a == '\0' || same(a + 1, b + 1)); }
}  // namespace detail
static_assert(kNVars == 3 && detail::same(kVarNames[kTsoil], "tsoil") && detail::same(kVarNames[kSwc], "swc") &&
                  detail::same(kVarNames[kPrecip], "precip"),
              "enum Var must follow rsoil_couple.variables.DRIVERS");
static_assert(detail::same(gen::kQ10FormNames[static_cast<int>(Q10Form::Q10)], "q10") &&
                  detail::same(gen::kQ10FormNames[static_cast<int>(Q10Form::Q10Swc)], "q10_swc") &&
                  detail::same(gen::kQ10FormNames[static_cast<int>(Q10Form::LogisticPower)], "logistic_power"),
              "enum Q10Form must follow rsoil_couple.variables.Q10_FORMS");

struct Range {
  double min = 0.0;
  double max = 0.0;
};

// The optional `streaming` record (rsoil_couple.modelfile.schema.streaming_property; the streaming
// contract in docs/model_format.md): present => the module has initial_state/step/run and the core
// keeps a float32 state [ncol][state_size] instead of a driver window.
struct StreamingMeta {
  bool present = false;
  int state_size = 0;    // floats per column
  int spinup_steps = 0;  // steps with status SPINUP before the first network output
  std::vector<std::pair<std::string, int>> layout;  // informational parts (name, size)
};

// Bound of streaming.state_size / spinup_steps / state_layout[i].size (schema.MAX_STREAMING_COUNT).
constexpr int kMaxStreamingCount = 1000000;

struct ModelMeta {
  int schema_version = 0;
  std::string model_kind;  // a free identifier: the core does not interpret it
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
  bool has_site_scale = false;  // the optional site_scale record is present
  double site_scale = 1.0;      // its value; the module's float32 site_scale buffer must equal it
  StreamingMeta streaming;
  std::string json;  // the raw text, for callers that want more fields
};

// Deepest nesting of arrays/objects accepted (rsoil_couple.modelfile.schema.MAX_DEPTH).
constexpr int kMetaMaxDepth = 32;
// site_scale.value = calibration.previous * calibration.factor within this relative tolerance
// (rsoil_couple.modelfile.schema.SITE_SCALE_RTOL).
constexpr double kSiteScaleRtol = 1e-6;

// Parse and validate the text of rsoil_meta.json. Throws MetaError naming the field.
ModelMeta parse_model_meta(const std::string& text);

// The model identity of a model file (docs/model_format.md, schema version 2): sha256 over the
// archive's entries except extra/rsoil_meta.json and .data/serialization_id, in sorted name order,
// each as (name length, name, size, bytes); the full 64 hex digits (model_id is the first 16).
// Throws MetaError when the file cannot be read as a TorchScript archive.
std::string model_identity(const std::string& model_path);

// Schema version >= 2: refuse (MetaError naming both ids) a file whose content does not hash to its
// metadata's model_id (a module swapped inside the file, metadata copied onto another module).
// Schema version 1 ids hashed another save of the module (into memory, without the metadata) and
// cannot be recomputed from the file: accepted as is (docs/model_format.md).
void check_model_identity(const std::string& model_path, const ModelMeta& meta);

}  // namespace rsc
