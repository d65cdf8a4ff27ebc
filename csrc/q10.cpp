#include "q10.hpp"

#include <cmath>

namespace rsc {

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
