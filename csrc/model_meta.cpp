#include "model_meta.hpp"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace rsc {

namespace {

using nlohmann::json;

constexpr int kSchemaVersions[] = {1, 2};

// Field paths as rsoil_couple.modelfile.schema.field_name writes them: "a.b[2].c", "" = top level.
std::string sub(const std::string& path, const std::string& key) { return path.empty() ? key : path + "." + key; }
std::string idx(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }

// Messages cross into Python (pybind11 decodes them as UTF-8) and into host logs: bytes that are not
// valid UTF-8 (a parser's "last read" snippet of a broken file, a dump cut inside a character) are
// written as \xNN instead.
std::string valid_utf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  const auto* b = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = b[i];
    const size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = len > 0 && i + len <= n && !(len == 2 && c < 0xC2);
    for (size_t k = 1; ok && k < len; ++k) ok = (b[i + k] & 0xC0) == 0x80;
    if (ok && c >= 0x20 && c != 0x7F) {
      out.append(s, i, len);
      i += len;
    } else {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xF];
      i += 1;
    }
  }
  return out;
}

[[noreturn]] void bad(const std::string& path, const std::string& what) {
  throw MetaError(valid_utf8("rsoil_meta.json: " + (path.empty() ? std::string("(top level)") : path) + ": " + what));
}

std::string shown(const json& v) {
  const std::string s = v.dump();
  return s.size() <= 60 ? s : s.substr(0, 60) + "...";
}

std::string fmt(double x) {
  std::ostringstream o;
  o.precision(17);
  o << x;
  return o.str();
}

// ---- the JSON text: what parsers disagree on, refused while parsing, naming the field ---------------
struct Frame {
  bool object = false;
  bool has_key = false;
  std::string key;
  size_t index = 0;  // arrays: elements completed so far
  std::set<std::string> keys;
};

std::string frames_path(const std::vector<Frame>& stack) {
  std::string p;
  for (const Frame& f : stack) {
    if (!f.object)
      p = idx(p, f.index);
    else if (f.has_key)
      p = sub(p, f.key);
    else
      break;
  }
  return p;
}

// nlohmann's parser is iterative and keeps the last of a key given twice; a callback tracks the
// field path, refuses nesting deeper than kMetaMaxDepth and keys given twice, and names the field of a
// syntax error (NaN and Infinity are not JSON).
json parse_text(const std::string& text) {
  // nlohmann stops reading at a NUL byte and would accept "{...}\0garbage"; JSON has no NUL outside
  // strings (inside them it must be escaped), so a raw NUL anywhere is invalid, as Python says.
  if (const size_t nul = text.find('\0'); nul != std::string::npos)
    bad("", "invalid JSON at byte " + std::to_string(nul) + ": a NUL byte");
  std::vector<Frame> stack;
  auto element_done = [&] {
    if (!stack.empty() && !stack.back().object) ++stack.back().index;
  };
  const json::parser_callback_t cb = [&](int /*depth*/, json::parse_event_t ev, json& parsed) {
    switch (ev) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (static_cast<int>(stack.size()) >= kMetaMaxDepth)
          bad(frames_path(stack), "nested deeper than " + std::to_string(kMetaMaxDepth) + " levels of arrays/objects");
        stack.emplace_back();
        stack.back().object = ev == json::parse_event_t::object_start;
        break;
      case json::parse_event_t::key: {
        Frame& f = stack.back();
        f.key = parsed.get<std::string>();
        f.has_key = true;
        if (!f.keys.insert(f.key).second) bad(frames_path(stack), "key given twice in the same object");
        break;
      }
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        stack.pop_back();
        element_done();
        break;
      case json::parse_event_t::value:
        element_done();
        break;
    }
    return true;
  };
  try {
    return json::parse(text, cb);
  } catch (const json::out_of_range& e) {  // a number beyond double's range (1e400): not finite
    bad(frames_path(stack), std::string("not a finite number (") + e.what() + ")");
  } catch (const json::parse_error& e) {
    std::string what = "invalid JSON at byte " + std::to_string(e.byte);
    for (const char* tok : {"-Infinity", "Infinity", "NaN"}) {
      const size_t at = text.rfind(tok, e.byte > 0 ? e.byte - 1 : 0);
      if (at != std::string::npos && at + 10 >= e.byte) {
        what = std::string(tok) + " is not a JSON number (NaN and Infinity are not JSON; " + what + ")";
        break;
      }
    }
    const std::string detail = e.what();
    const size_t colon = detail.find(": ");
    bad(frames_path(stack), what + (colon == std::string::npos ? "" : ": " + detail.substr(colon + 2)));
  }
}

// ---- the JSON Schema's rules (rsoil_couple/modelfile/rsoil_meta.schema.json) ------------------------
const char* type_of(const json& v) {
  if (v.is_boolean()) return "boolean";
  if (v.is_number_integer()) return "integer";
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  if (v.is_array()) return "array";
  if (v.is_object()) return "object";
  return "null";
}

void expect(bool ok, const json& v, const std::string& path, const char* type) {
  if (!ok) bad(path, std::string("expected ") + type + ", found " + type_of(v));
}

const json& req(const json& obj, const std::string& path, const std::string& key) {
  const auto it = obj.find(key);
  if (it == obj.end()) bad(sub(path, key), "required field is missing");
  return *it;
}

const json& object(const json& v, const std::string& path) {
  expect(v.is_object(), v, path, "object");
  return v;
}

const json& array(const json& v, const std::string& path) {
  expect(v.is_array(), v, path, "array");
  return v;
}

const std::string& string(const json& v, const std::string& path) {
  expect(v.is_string(), v, path, "string");
  return v.get_ref<const std::string&>();
}

double number(const json& v, const std::string& path) {
  expect(v.is_number(), v, path, "number");
  return v.get<double>();
}

double integer(const json& v, const std::string& path) {
  expect(v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()), v,
         path, "integer");
  return v.get<double>();
}

double within(double x, const std::string& path, double lo, double hi, bool lo_exclusive = false) {
  if (lo_exclusive ? !(x > lo) : !(x >= lo)) bad(path, fmt(x) + ": must be " + (lo_exclusive ? "> " : ">= ") + fmt(lo));
  if (!(x <= hi)) bad(path, fmt(x) + ": must be <= " + fmt(hi));
  return x;
}

void constant(const json& v, const std::string& path, const std::string& want) {
  if (!v.is_string() || v.get_ref<const std::string&>() != want)
    bad(path, "expected \"" + want + "\", found " + shown(v));
}

template <size_t N>
int one_of(const json& v, const std::string& path, const std::array<const char*, N>& names) {
  if (v.is_string())
    for (size_t k = 0; k < N; ++k)
      if (v.get_ref<const std::string&>() == names[k]) return static_cast<int>(k);
  std::string all;
  for (size_t k = 0; k < N; ++k) all += (k ? ", \"" : "\"") + std::string(names[k]) + "\"";
  bad(path, "unknown value " + shown(v) + " (expected one of " + all + ")");
}

// Every number finite (a number too large for a double parses as infinity).
void check_finite(const json& v, const std::string& path) {
  if (v.is_number_float() && !std::isfinite(v.get<double>())) bad(path, fmt(v.get<double>()) + " is not a finite number");
  if (v.is_object())
    for (auto it = v.begin(); it != v.end(); ++it) check_finite(it.value(), sub(path, it.key()));
  if (v.is_array())
    for (size_t i = 0; i < v.size(); ++i) check_finite(v[i], idx(path, i));
}

bool is_identifier(const std::string& s, size_t max_len) {
  if (s.empty() || s.size() > max_len) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    if (!(letter || (i > 0 && c >= '0' && c <= '9'))) return false;
  }
  return true;
}

std::vector<int> drivers(const json& root, const std::string& key, size_t min_items) {
  const json& arr = array(req(root, "", key), key);
  if (arr.size() < min_items) bad(key, "must list at least " + std::to_string(min_items) + " variable");
  std::vector<int> out;
  for (size_t i = 0; i < arr.size(); ++i) {
    const std::string path = idx(key, i);
    const json& e = object(arr[i], path);
    const int v = one_of(req(e, path, "name"), sub(path, "name"), gen::kVarNames);
    const json& units = req(e, path, "units");
    string(units, sub(path, "units"));
    constant(units, sub(path, "units"), gen::kVarUnits[v]);
    out.push_back(v);
  }
  return out;
}

void range_table(const json& root, const std::string& key) {
  const json& t = object(req(root, "", key), key);
  for (auto it = t.begin(); it != t.end(); ++it) {
    const std::string path = sub(key, it.key());
    one_of(json(it.key()), path, gen::kVarNames);
    const json& r = object(it.value(), path);
    number(req(r, path, "min"), sub(path, "min"));
    number(req(r, path, "max"), sub(path, "max"));
  }
}

// A string that begins with an ISO 8601 date YYYY-MM-DD (schema.ISO_DATE_PATTERN).
const std::string& iso_date(const json& v, const std::string& path) {
  const std::string& s = string(v, path);
  bool ok = s.size() >= 10;
  for (size_t i = 0; ok && i < 10; ++i) ok = (i == 4 || i == 7) ? s[i] == '-' : (s[i] >= '0' && s[i] <= '9');
  if (!ok) bad(path, shown(v) + " does not match the pattern ^[0-9]{4}-[0-9]{2}-[0-9]{2}");
  return s;
}

// The optional site_scale record (rsoil_couple.modelfile.schema.site_scale_property and
// _check_site_scale): its fields, then its cross-field rules.
void site_scale(const json& root, ModelMeta& m) {
  const auto it = root.find("site_scale");
  if (it == root.end()) return;
  const std::string k = "site_scale";
  const json& s = object(*it, k);
  for (const char* f : {"value", "method", "sites"}) req(s, k, f);
  const double value = within(number(s.at("value"), k + ".value"), k + ".value", 0, HUGE_VAL, true);
  const int method = one_of(s.at("method"), k + ".method", gen::kSiteScaleMethods);
  const json& sites = array(s.at("sites"), k + ".sites");
  for (size_t i = 0; i < sites.size(); ++i) string(sites[i], idx(k + ".sites", i));
  const std::string c = k + ".calibration";
  const auto cal = s.find("calibration");
  double factor = 0, previous = 0;
  std::string start, end;
  if (cal != s.end()) {
    const json& o = object(*cal, c);
    for (const char* f : {"data", "start", "end", "n_obs", "factor", "previous"}) req(o, c, f);
    string(o.at("data"), c + ".data");
    start = iso_date(o.at("start"), c + ".start");
    end = iso_date(o.at("end"), c + ".end");
    within(integer(o.at("n_obs"), c + ".n_obs"), c + ".n_obs", 1, HUGE_VAL);
    factor = within(number(o.at("factor"), c + ".factor"), c + ".factor", 0, HUGE_VAL, true);
    previous = within(number(o.at("previous"), c + ".previous"), c + ".previous", 0, HUGE_VAL, true);
  }
  const bool calibrated = std::string(gen::kSiteScaleMethods[method]) == "calibrated";
  if (calibrated && cal == s.end()) bad(c, "required when method is \"calibrated\"");
  if (!calibrated && cal != s.end()) bad(c, "only for method \"calibrated\" (method is " + shown(s.at("method")) + ")");
  if (calibrated) {
    if (end < start) bad(c + ".end", shown(json(end)) + " is before start " + shown(json(start)));
    const double want = previous * factor;
    if (std::fabs(value - want) > kSiteScaleRtol * value)
      bad(k + ".value", fmt(value) + " but calibration.previous * calibration.factor = " + fmt(want) +
                            " (relative tolerance 1e-06)");
  }
  m.has_site_scale = true;
  m.site_scale = value;
}

// The `streaming` record's types and ranges (schema.streaming_property); its cross-field rules are in
// validate, after the others, as in Python.
StreamingMeta streaming_record(const json& v) {
  const std::string path = "streaming";
  const json& s = object(v, path);
  for (const char* k : {"state_size", "spinup_steps", "missing", "state_layout"}) req(s, path, k);
  StreamingMeta out;
  out.present = true;
  out.state_size = static_cast<int>(within(integer(s.at("state_size"), sub(path, "state_size")), sub(path, "state_size"),
                                           1, kMaxStreamingCount));
  out.spinup_steps = static_cast<int>(within(integer(s.at("spinup_steps"), sub(path, "spinup_steps")),
                                             sub(path, "spinup_steps"), 0, kMaxStreamingCount));
  constant(s.at("missing"), sub(path, "missing"), "hold");
  const std::string lpath = sub(path, "state_layout");
  const json& layout = array(s.at("state_layout"), lpath);
  if (layout.empty()) bad(lpath, "must list at least 1 part");
  for (size_t i = 0; i < layout.size(); ++i) {
    const std::string p = idx(lpath, i);
    const json& e = object(layout[i], p);
    const json& name = req(e, p, "name");
    const json& size = req(e, p, "size");
    const std::string& n = string(name, sub(p, "name"));
    if (!is_identifier(n, 64))
      bad(sub(p, "name"), shown(name) + " is not an identifier of 1 to 64 characters [A-Za-z_][A-Za-z0-9_]*");
    out.layout.emplace_back(n, static_cast<int>(within(integer(size, sub(p, "size")), sub(p, "size"), 1, kMaxStreamingCount)));
  }
  return out;
}

// ---- the cross-field rules (rsoil_couple.modelfile.schema._check_rules) -----------------------------
int steps_from_hours(const json& root, const std::string& prefix, double step_seconds) {
  const double hours = root.at(prefix + "_hours").get<double>();
  const double steps = root.at(prefix + "_steps").get<double>();
  const double expect = std::floor(hours * 3600.0 / step_seconds + 0.5);  // round half up, as Python
  if (steps != expect)
    bad(prefix + "_steps", std::to_string(static_cast<long long>(steps)) + " but " + prefix +
                               "_hours*3600/step_seconds = " + std::to_string(static_cast<long long>(expect)));
  return static_cast<int>(steps);
}

void no_duplicates(const std::vector<int>& vars, const std::string& key) {
  for (size_t i = 0; i < vars.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (vars[j] == vars[i])
        bad(sub(idx(key, i), "name"), std::string("variable \"") + kVarNames[vars[i]] + "\" listed twice");
}

Range range_of(const json& root, const std::string& key, int v) {
  const json& t = root.at(key);
  const auto it = t.find(kVarNames[v]);
  if (it == t.end()) bad(sub(key, kVarNames[v]), "required for an input variable but missing");
  return Range{it->at("min").get<double>(), it->at("max").get<double>()};
}

void min_le_max(const json& root, const std::string& key) {
  const json& t = root.at(key);
  for (auto it = t.begin(); it != t.end(); ++it) {
    const double lo = it->at("min").get<double>(), hi = it->at("max").get<double>();
    if (!(lo <= hi)) bad(sub(key, it.key()), "min " + fmt(lo) + " > max " + fmt(hi));
  }
}

ModelMeta validate(const json& root, const std::string& text) {
  object(root, "");
  check_finite(root, "");
  static const char* const kRequired[] = {
      "schema", "schema_version", "model_kind", "model_id", "step_seconds", "past_hours", "past_steps",
      "future_hours", "future_steps", "past_vars", "future_vars", "depth_m", "output", "envelope",
      "physical_range", "fallback_q10", "training", "test_metrics", "torch_version", "rsoil_couple_version"};
  for (const char* k : kRequired) req(root, "", k);

  ModelMeta m;
  m.json = text;
  constant(root.at("schema"), "schema", "rsoil_meta");
  const json& version = root.at("schema_version");
  m.schema_version = static_cast<int>(integer(version, "schema_version"));
  if (std::find(std::begin(kSchemaVersions), std::end(kSchemaVersions), version.get<double>()) ==
      std::end(kSchemaVersions))
    bad("schema_version", "unknown schema version " + shown(version) + " (this core reads 1, 2)");
  m.model_kind = string(root.at("model_kind"), "model_kind");
  if (!is_identifier(m.model_kind, 64))
    bad("model_kind", shown(root.at("model_kind")) + " is not an identifier of 1 to 64 characters [A-Za-z_][A-Za-z0-9_]*");
  m.model_id = string(root.at("model_id"), "model_id");
  if (m.model_id.size() != 16 ||
      !std::all_of(m.model_id.begin(), m.model_id.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }))
    bad("model_id", shown(root.at("model_id")) + " is not 16 lowercase hex digits");
  m.step_seconds = within(integer(root.at("step_seconds"), "step_seconds"), "step_seconds", 0, 86400, true);
  within(number(root.at("past_hours"), "past_hours"), "past_hours", 0, 1e8);
  within(integer(root.at("past_steps"), "past_steps"), "past_steps", 1, 1e6);
  within(number(root.at("future_hours"), "future_hours"), "future_hours", 0, 1e8);
  within(integer(root.at("future_steps"), "future_steps"), "future_steps", 0, 1e6);
  m.past_vars = drivers(root, "past_vars", 1);
  m.future_vars = drivers(root, "future_vars", 0);
  within(number(root.at("depth_m"), "depth_m"), "depth_m", 0, HUGE_VAL);
  const json& output = object(root.at("output"), "output");
  constant(req(output, "output", "name"), "output.name", "rsoil");
  constant(req(output, "output", "units"), "output.units", gen::kRsoilUnits);
  range_table(root, "envelope");
  range_table(root, "physical_range");

  const json& fq = object(root.at("fallback_q10"), "fallback_q10");
  for (const char* k : {"form", "params", "tref_c", "swc_units", "fitted_on"}) req(fq, "fallback_q10", k);
  const int form = one_of(fq.at("form"), "fallback_q10.form", gen::kQ10FormNames);
  m.q10.form = static_cast<Q10Form>(form);
  m.q10.form_name = gen::kQ10FormNames[form];
  const json& params = object(fq.at("params"), "fallback_q10.params");
  double* coef[4] = {&m.q10.a, &m.q10.b, &m.q10.c, &m.q10.d};
  for (int k = 0; k < gen::kQ10NParams[form]; ++k) {
    const std::string p = gen::kQ10ParamNames[form][k];
    *coef[k] = m.q10.params[p] = number(req(params, "fallback_q10.params", p), "fallback_q10.params." + p);
  }
  m.q10.tref_c = number(fq.at("tref_c"), "fallback_q10.tref_c");
  m.q10.swc_percent = std::string(gen::kQ10SwcUnits[one_of(fq.at("swc_units"), "fallback_q10.swc_units",
                                                           gen::kQ10SwcUnits)]) == "percent";
  string(fq.at("fitted_on"), "fallback_q10.fitted_on");

  const json& training = object(root.at("training"), "training");
  for (const char* k : {"sites", "periods", "n_train", "n_val", "seed"}) req(training, "training", k);
  const json& sites = array(training.at("sites"), "training.sites");
  for (size_t i = 0; i < sites.size(); ++i) string(sites[i], idx("training.sites", i));
  const json& periods = array(training.at("periods"), "training.periods");
  for (size_t i = 0; i < periods.size(); ++i) {
    const std::string path = idx("training.periods", i);
    const json& p = array(periods[i], path);
    if (p.size() != 2) bad(path, "expected [start, end], found " + std::to_string(p.size()) + " items");
    for (size_t j = 0; j < 2; ++j) string(p[j], idx(path, j));
  }
  within(integer(training.at("n_train"), "training.n_train"), "training.n_train", 0, HUGE_VAL);
  within(integer(training.at("n_val"), "training.n_val"), "training.n_val", 0, HUGE_VAL);
  integer(training.at("seed"), "training.seed");
  const json& metrics = object(root.at("test_metrics"), "test_metrics");
  for (const char* k : {"mse", "nse", "cc", "kge", "n"}) req(metrics, "test_metrics", k);
  for (const char* k : {"mse", "nse", "cc", "kge"})
    expect(metrics.at(k).is_number() || metrics.at(k).is_null(), metrics.at(k), sub("test_metrics", k), "number or null");
  within(integer(metrics.at("n"), "test_metrics.n"), "test_metrics.n", 0, HUGE_VAL);
  for (const char* k : {"torch_version", "rsoil_couple_version"})
    if (string(root.at(k), k).empty()) bad(k, "must be a non-empty string");
  if (const auto it = root.find("streaming"); it != root.end()) m.streaming = streaming_record(*it);

  // Cross-field rules.
  no_duplicates(m.past_vars, "past_vars");
  m.past_steps = steps_from_hours(root, "past", m.step_seconds);
  no_duplicates(m.future_vars, "future_vars");
  m.future_steps = steps_from_hours(root, "future", m.step_seconds);
  if ((m.future_steps == 0) != m.future_vars.empty())
    bad("future_vars", "must be empty exactly when future_steps == 0 (future_steps = " +
                           std::to_string(m.future_steps) + ")");
  for (int v : m.past_vars) m.used[v] = true;
  for (int v : m.future_vars) m.used[v] = true;
  std::vector<int> order(m.past_vars);  // variables in order of first use, as Python reports them
  for (int v : m.future_vars)
    if (std::find(order.begin(), order.end(), v) == order.end()) order.push_back(v);
  for (const char* table : {"envelope", "physical_range"}) {
    for (int v : order) (std::string(table) == "envelope" ? m.envelope : m.physical_range)[v] = range_of(root, table, v);
    min_le_max(root, table);
  }
  site_scale(root, m);
  if (m.streaming.present) {  // a streaming model has no future window; its state parts add up
    if (!m.future_vars.empty()) bad("future_vars", "must be [] for a streaming model (the streaming record is present)");
    const double future_hours = root.at("future_hours").get<double>();
    if (future_hours != 0.0)
      bad("future_hours", fmt(future_hours) + ": must be 0 for a streaming model (the streaming record is present)");
    long long total = 0;
    for (const auto& part : m.streaming.layout) total += part.second;
    if (total != m.streaming.state_size)
      bad("streaming.state_layout", "sizes sum to " + std::to_string(total) + " but streaming.state_size is " +
                                        std::to_string(m.streaming.state_size));
  }
  return m;
}

}  // namespace

ModelMeta parse_model_meta(const std::string& text) {
  try {
    return validate(parse_text(text), text);
  } catch (const json::exception& e) {  // not expected (every access is checked first): still a MetaError
    throw MetaError(valid_utf8(std::string("rsoil_meta.json: ") + e.what()));
  }
}

}  // namespace rsc
