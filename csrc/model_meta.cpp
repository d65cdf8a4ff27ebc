#include "model_meta.hpp"

#include <cmath>
#include <set>
#include <sstream>

#include "json.hpp"

namespace rsc {

const char* const kVarNames[kNVars] = {"tsoil", "swc", "precip"};
const char* const kVarUnits[kNVars] = {"degC", "m3 m-3", "mm"};

namespace {

constexpr int kSchemaVersion = 1;

[[noreturn]] void bad(const std::string& field, const std::string& what) {
  throw MetaError("rsoil_meta.json: " + field + ": " + what);
}

const Json& require(const Json& obj, const std::string& key, Json::Type type, const std::string& path) {
  const std::string field = path.empty() ? key : path + "." + key;
  if (!obj.has(key)) bad(field, "required field is missing");
  const Json& v = obj.at(key);
  if (v.type() != type)
    bad(field, std::string("expected ") + Json::type_name(type) + ", found " + Json::type_name(v.type()));
  return v;
}

double number(const Json& obj, const std::string& key, const std::string& path = "") {
  const double x = require(obj, key, Json::Type::Number, path).as_number();
  if (!std::isfinite(x)) bad(path.empty() ? key : path + "." + key, "not a finite number");
  return x;
}

const std::string& string(const Json& obj, const std::string& key, const std::string& path = "") {
  return require(obj, key, Json::Type::String, path).as_string();
}

int integer(const Json& obj, const std::string& key) {
  const double x = number(obj, key);
  if (x != std::floor(x) || std::fabs(x) > 1e9) bad(key, "expected an integer, found " + std::to_string(x));
  return static_cast<int>(x);
}

std::vector<int> var_list(const Json& root, const std::string& key) {
  const Json& arr = require(root, key, Json::Type::Array, "");
  std::vector<int> out;
  std::set<int> seen;
  for (size_t i = 0; i < arr.as_array().size(); ++i) {
    const Json& e = arr.as_array()[i];
    const std::string path = key + "[" + std::to_string(i) + "]";
    if (!e.is_object()) bad(path, "expected an object {\"name\", \"units\"}");
    const std::string& name = string(e, "name", path);
    const std::string& units = string(e, "units", path);
    int v = -1;
    for (int k = 0; k < kNVars; ++k)
      if (name == kVarNames[k]) v = k;
    if (v < 0) bad(path + ".name", "unknown variable \"" + name + "\" (expected tsoil, swc or precip)");
    if (units != kVarUnits[v])
      bad(path + ".units", "\"" + units + "\" for " + name + ", expected \"" + kVarUnits[v] + "\"");
    if (!seen.insert(v).second) bad(path + ".name", "variable \"" + name + "\" listed twice");
    out.push_back(v);
  }
  return out;
}

Range range(const Json& root, const std::string& key, int v) {
  const Json& obj = require(root, key, Json::Type::Object, "");
  const std::string path = key + "." + kVarNames[v];
  if (!obj.has(kVarNames[v])) bad(path, "required for an input variable but missing");
  const Json& r = obj.at(kVarNames[v]);
  if (!r.is_object()) bad(path, "expected an object {\"min\", \"max\"}");
  Range out{number(r, "min", path), number(r, "max", path)};
  if (!(out.min <= out.max)) bad(path, "min > max");
  return out;
}

int steps_from_hours(const Json& root, const std::string& prefix, double step_seconds) {
  const double hours = number(root, prefix + "_hours");
  const int steps = integer(root, prefix + "_steps");
  const long expect = std::lround(hours * 3600.0 / step_seconds);
  if (steps != expect) {
    std::ostringstream m;
    m << steps << " but " << prefix << "_hours*3600/step_seconds = " << expect;
    bad(prefix + "_steps", m.str());
  }
  return steps;
}

}  // namespace

ModelMeta parse_model_meta(const std::string& text) {
  Json root;
  try {
    root = Json::parse(text);
  } catch (const std::runtime_error& e) {
    throw MetaError(std::string("rsoil_meta.json: ") + e.what());
  }
  if (!root.is_object()) bad("(top level)", "expected a JSON object");
  ModelMeta m;
  m.json = text;
  if (string(root, "schema") != "rsoil_meta")
    bad("schema", "\"" + root.at("schema").as_string() + "\", expected \"rsoil_meta\"");
  m.schema_version = integer(root, "schema_version");
  if (m.schema_version != kSchemaVersion)
    bad("schema_version", "unknown schema version " + std::to_string(m.schema_version) +
                              " (this core reads version " + std::to_string(kSchemaVersion) + ")");
  m.model_kind = string(root, "model_kind");
  static const std::set<std::string> kinds = {"lstm", "unilstm", "mlp", "kg_lstm"};
  if (!kinds.count(m.model_kind)) bad("model_kind", "unknown kind \"" + m.model_kind + "\"");
  m.model_id = string(root, "model_id");
  if (m.model_id.empty() || m.model_id.size() > 64) bad("model_id", "expected 1 to 64 characters");
  m.step_seconds = number(root, "step_seconds");
  if (!(m.step_seconds > 0)) bad("step_seconds", "must be > 0");
  m.past_steps = steps_from_hours(root, "past", m.step_seconds);
  m.future_steps = steps_from_hours(root, "future", m.step_seconds);
  if (m.past_steps < 1) bad("past_steps", "must be >= 1");
  if (m.future_steps < 0) bad("future_steps", "must be >= 0");
  m.past_vars = var_list(root, "past_vars");
  m.future_vars = var_list(root, "future_vars");
  if (m.past_vars.empty()) bad("past_vars", "must list at least one variable");
  if ((m.future_steps == 0) != m.future_vars.empty())
    bad("future_vars", "must be empty exactly when future_steps == 0 (future_steps = " +
                           std::to_string(m.future_steps) + ")");
  number(root, "depth_m");
  const Json& output = require(root, "output", Json::Type::Object, "");
  if (string(output, "name", "output") != "rsoil") bad("output.name", "expected \"rsoil\"");
  if (string(output, "units", "output") != "umol m-2 s-1") bad("output.units", "expected \"umol m-2 s-1\"");
  for (int v : m.past_vars) m.used[v] = true;
  for (int v : m.future_vars) m.used[v] = true;
  for (int v = 0; v < kNVars; ++v) {
    if (!m.used[v]) continue;
    m.envelope[v] = range(root, "envelope", v);
    m.physical_range[v] = range(root, "physical_range", v);
  }

  const Json& fq = require(root, "fallback_q10", Json::Type::Object, "");
  m.q10.form_name = string(fq, "form", "fallback_q10");
  std::vector<std::string> needed;
  if (m.q10.form_name == "q10") {
    m.q10.form = Q10Form::Q10;
    needed = {"a", "b"};
  } else if (m.q10.form_name == "q10_swc") {
    m.q10.form = Q10Form::Q10Swc;
    needed = {"a", "b", "c"};
  } else if (m.q10.form_name == "logistic_power") {
    m.q10.form = Q10Form::LogisticPower;
    needed = {"a", "b", "c", "d"};
  } else {
    bad("fallback_q10.form", "unknown form \"" + m.q10.form_name + "\" (expected q10, q10_swc or logistic_power)");
  }
  const Json& params = require(fq, "params", Json::Type::Object, "fallback_q10");
  for (const auto& p : needed) m.q10.params[p] = number(params, p, "fallback_q10.params");
  double* coef[4] = {&m.q10.a, &m.q10.b, &m.q10.c, &m.q10.d};
  for (size_t k = 0; k < needed.size(); ++k) *coef[k] = m.q10.params[needed[k]];
  m.q10.tref_c = number(fq, "tref_c", "fallback_q10");
  const std::string& su = string(fq, "swc_units", "fallback_q10");
  if (su != "m3 m-3" && su != "percent") bad("fallback_q10.swc_units", "\"" + su + "\", expected \"m3 m-3\" or \"percent\"");
  m.q10.swc_percent = su == "percent";
  require(fq, "fitted_on", Json::Type::String, "fallback_q10");

  const Json& training = require(root, "training", Json::Type::Object, "");
  require(training, "sites", Json::Type::Array, "training");
  require(training, "periods", Json::Type::Array, "training");
  require(root, "test_metrics", Json::Type::Object, "");
  string(root, "torch_version");
  string(root, "rsoil_couple_version");
  return m;
}

double q10_predict(const FallbackQ10& q, double tsoil_c, double swc_m3m3) {
  const double swc = q.swc_percent ? swc_m3m3 * 100.0 : swc_m3m3;
  switch (q.form) {
    case Q10Form::Q10:
      return q.a * std::pow(q.b, (tsoil_c - q.tref_c) / 10.0);
    case Q10Form::Q10Swc:
      return q.a * std::pow(q.b, (tsoil_c - q.tref_c) / 10.0) * std::pow(swc, q.c);
    case Q10Form::LogisticPower:
      return q.a / (1.0 + std::exp(q.b * (q.c - tsoil_c))) * std::pow(swc, q.d);
  }
  return std::nan("");
}

}  // namespace rsc
