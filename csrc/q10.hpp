// The Q10 fallback of a model file (rsoil_meta.json's fallback_q10): the formulas of Jiang et al. (2022)
// eq. 2, the C++ twin of rsoil_couple.q10.predict (exposed to Python as _core.q10_predict for tests).
#pragma once

#include <map>
#include <string>

namespace rsc {

// The forms, in the order of rsoil_couple.variables.Q10_FORMS (rsc::gen::kQ10FormNames).
enum class Q10Form { Q10 = 0, Q10Swc = 1, LogisticPower = 2 };

struct FallbackQ10 {
  Q10Form form = Q10Form::Q10;
  std::string form_name;
  std::map<std::string, double> params;  // a, b, c[, d] by name (as in the file)
  double a = 0, b = 0, c = 0, d = 0;     // the same, for the hot path (unused ones 0)
  double tref_c = 10.0;                  // reference temperature of the q10 forms [°C]
  bool swc_percent = false;              // swc_units == "percent"
};

// The fallback Q10 at one column's drivers [µmol m-2 s-1]:
//   q10:            a * b^((T - tref)/10)
//   q10_swc:        a * b^((T - tref)/10) * W^c
//   logistic_power: a / (1 + exp(b (c - T))) * W^d
// with T = tsoil [°C] and W = swc in the unit swc_units states.
double q10_predict(const FallbackQ10& q, double tsoil_c, double swc_m3m3);

}  // namespace rsc
