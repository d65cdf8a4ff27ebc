// rsoil_couple._core: the pybind11 view of rsc::Coupler (numpy in and out, GIL released in step).
// Canonical units: tsoil °C, swc m3 m-3, precip mm per step. The public class is
// rsoil_couple.Coupler (rsoil_couple/coupler.py), a thin subclass.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

#include "coupler.hpp"

namespace py = pybind11;
using Array = py::array_t<double, py::array::c_style | py::array::forcecast>;

namespace {

// obj as an array of real numbers (bool, int, float): strings, objects, complex are refused rather
// than parsed or truncated by numpy's forced cast.
Array numeric_array(const py::handle& obj, const std::string& name) {
  py::array raw = py::array::ensure(obj);
  if (!raw) throw py::type_error(name + ": expected an array of numbers");
  const char k = raw.dtype().kind();
  if (k != 'b' && k != 'i' && k != 'u' && k != 'f')
    throw py::type_error(name + ": expected real numbers, got dtype " + py::str(raw.dtype()).cast<std::string>());
  Array a = Array::ensure(raw);
  if (!a) throw py::type_error(name + ": expected an array of numbers");
  return a;
}

Array column_array(const py::handle& obj, const char* name, int ncol) {
  Array a = numeric_array(obj, name);
  if (a.ndim() != 1 || a.shape(0) != ncol)
    throw py::value_error(std::string(name) + ": expected shape (" + std::to_string(ncol) + ",) (ncol), got " +
                          py::str(py::tuple(py::cast(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim())))).cast<std::string>());
  return a;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "rsoil_couple C++ core (private; use rsoil_couple.Coupler)";
  m.attr("NSTATUS") = RSC_NSTATUS;
  m.attr("STATE_LAYOUT_VERSION") = rsc::kStateLayoutVersion;
  m.attr("STREAMING_STATE_LAYOUT_VERSION") = rsc::kStreamingStateLayoutVersion;
  // Raised when a coupler is used by two threads at once (the second call is refused, did nothing).
  static PyObject* busy_error = PyErr_NewExceptionWithDoc(
      "rsoil_couple._core.BusyError",
      "The coupler is in use by another thread; the call was refused and did nothing (RSC_E_BUSY).",
      PyExc_RuntimeError, nullptr);
  m.attr("BusyError") = py::handle(busy_error);

  // Core errors become Python exceptions carrying the core's message: a missing file is
  // FileNotFoundError, bad values/metadata/state are ValueError, anything else RuntimeError.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const rsc::CoreError& e) {
      switch (e.code) {
        case RSC_E_FILE: PyErr_SetString(PyExc_FileNotFoundError, e.what()); return;
        case RSC_E_INVALID_ARGUMENT:
        case RSC_E_NULL_POINTER:
        case RSC_E_METADATA:
        case RSC_E_MODEL:
        case RSC_E_STATE: PyErr_SetString(PyExc_ValueError, e.what()); return;
        case RSC_E_BUSY: PyErr_SetString(busy_error, e.what()); return;
        default: PyErr_SetString(PyExc_RuntimeError, e.what()); return;
      }
    }
  });

  py::class_<rsc::Coupler>(m, "Coupler", py::dynamic_attr())
      .def(py::init([](const std::string& path, int ncol, int policy, bool strict, int chunk_size, int num_threads) {
             rsc::Options o;
             o.ncol = ncol;
             o.policy = policy;
             o.strict = strict;
             o.chunk_size = chunk_size;
             o.num_threads = num_threads;
             py::gil_scoped_release release;
             return new rsc::Coupler(path, o);
           }),
           py::arg("model_path"), py::arg("ncol"), py::arg("policy"), py::arg("strict") = false,
           py::arg("chunk_size") = 0, py::arg("num_threads") = 0)
      .def(
          "_step",
          [](rsc::Coupler& c, const py::object& tsoil, const py::object& swc, const py::object& precip,
             const py::object& ft, const py::object& fs, const py::object& fp) {
            const rsc::InUse in_use(c);  // held across the GIL release below
            const int n = c.options().ncol;
            const int F = c.meta().future_steps;
            Array a_t = column_array(tsoil, "tsoil", n), a_s = column_array(swc, "swc", n),
                  a_p = column_array(precip, "precip", n);
            const py::object fin[rsc::kNVars] = {ft, fs, fp};
            Array a_f[rsc::kNVars];
            std::array<const double*, rsc::kNVars> fut{nullptr, nullptr, nullptr};
            for (int v = 0; v < rsc::kNVars; ++v) {
              if (fin[v].is_none()) continue;
              const std::string name = std::string("future_") + rsc::kVarNames[v];
              a_f[v] = numeric_array(fin[v], name);
              if (a_f[v].ndim() != 2 || a_f[v].shape(0) != n || a_f[v].shape(1) != F)
                throw py::value_error(name + ": expected shape (" + std::to_string(n) + ", " + std::to_string(F) +
                                      ") (ncol, future_steps)");
              fut[v] = a_f[v].data();
            }
            Array rsoil(n), gc(n), scalar(n);
            py::array_t<int32_t> status(n);
            double *pr = rsoil.mutable_data(), *pg = gc.mutable_data(), *ps = scalar.mutable_data();
            int32_t* pst = status.mutable_data();
            {
              py::gil_scoped_release release;
              c.step(a_t.data(), a_s.data(), a_p.data(), fut, pr, pg, ps, pst);
            }
            return py::make_tuple(rsoil, gc, scalar, status);
          },
          py::arg("tsoil"), py::arg("swc"), py::arg("precip"), py::arg("future_tsoil") = py::none(),
          py::arg("future_swc") = py::none(), py::arg("future_precip") = py::none())
      .def(
          "_set_mask",
          [](rsc::Coupler& c, py::array_t<int32_t, py::array::c_style | py::array::forcecast> use_model) {
            const rsc::InUse in_use(c);
            if (use_model.ndim() != 1 || use_model.shape(0) != c.options().ncol)
              throw py::value_error("mask: expected shape (" + std::to_string(c.options().ncol) + ",) (ncol)");
            c.set_mask(use_model.data());
          },
          py::arg("use_model"))
      .def_property_readonly("mask", [](const rsc::Coupler& c) {
        const rsc::InUse in_use(c);
        std::vector<int> m = c.mask();
        py::array_t<bool> out(static_cast<py::ssize_t>(m.size()));
        for (size_t i = 0; i < m.size(); ++i) out.mutable_at(i) = m[i] != 0;
        return out;
      })
      .def("get_state", [](const rsc::Coupler& c) {
        const rsc::InUse in_use(c);
        const std::vector<uint8_t> s = c.state_get();
        return py::bytes(reinterpret_cast<const char*>(s.data()), s.size());
      }, "The restart state as bytes (layout in docs/core.md).")
      .def("set_state", [](rsc::Coupler& c, const py::bytes& b) {
        const std::string s = b;
        const rsc::InUse in_use(c);
        c.state_put(reinterpret_cast<const uint8_t*>(s.data()), s.size());
      }, py::arg("state"), "Restore a state from get_state (same model, ncol, policy, strict).")
      .def_property_readonly("counters", [](const rsc::Coupler& c) {
        const rsc::InUse in_use(c);
        const auto counts = c.counters();
        py::array_t<int64_t> out(RSC_NSTATUS);
        for (int s = 0; s < RSC_NSTATUS; ++s) out.mutable_at(s) = counts[s];
        return out;
      }, "Cumulative column-steps per status code [NSTATUS].")
      .def_property_readonly("diagnostic", [](const rsc::Coupler& c) {
        const rsc::InUse in_use(c);
        return c.diagnostic();
      }, "The last step's input problems, '' if none.")
      .def_property_readonly("ncol", [](const rsc::Coupler& c) { return c.options().ncol; })
      .def_property_readonly("_policy", [](const rsc::Coupler& c) { return c.options().policy; })
      .def_property_readonly("strict", [](const rsc::Coupler& c) { return c.options().strict; })
      .def_property_readonly("chunk_size", [](const rsc::Coupler& c) { return c.options().chunk_size; })
      .def_property_readonly("past_steps", [](const rsc::Coupler& c) { return c.meta().past_steps; })
      .def_property_readonly("future_steps", [](const rsc::Coupler& c) { return c.meta().future_steps; })
      .def_property_readonly("step_seconds", [](const rsc::Coupler& c) { return c.meta().step_seconds; })
      .def_property_readonly("spinup_steps", &rsc::Coupler::spinup_steps)
      .def_property_readonly("lag_steps", &rsc::Coupler::lag_steps)
      .def_property_readonly("capacity", &rsc::Coupler::capacity)
      .def_property_readonly("streaming", &rsc::Coupler::streaming,
                             "True for a streaming model file (the core keeps its state, not a driver window).")
      .def_property_readonly("streaming_single_call", &rsc::Coupler::streaming_single_call,
                             "Streaming model with chunk_size > 0 and more columns than a chunk: True when each "
                             "time step is ONE step() call on all columns (padded to a multiple of 64 rows), "
                             "which the load probe found bit-identical to one call per chunk.")
      .def_property_readonly("streaming_rows_independent", &rsc::Coupler::streaming_rows_independent,
                             "chunk_size > 0: True when the load probe found a column's values independent of "
                             "its row in a call (bit for bit; streaming models: step(), window models: "
                             "forward()): a column's values are then independent of the decomposition "
                             "(1 MPI rank == N ranks). The name is kept from when only streaming models "
                             "were probed.")
      .def_property_readonly("streaming_state_size", &rsc::Coupler::streaming_state_size,
                             "Floats of model state per column (streaming models; 0 for window models).")
      .def_property_readonly("steps_taken", [](const rsc::Coupler& c) {
        const rsc::InUse in_use(c);
        return c.steps_taken();
      })
      .def_property_readonly("model_id", [](const rsc::Coupler& c) { return c.meta().model_id; })
      .def_property_readonly("meta_json", [](const rsc::Coupler& c) { return c.meta().json; })
      .def_property_readonly("past_vars", [](const rsc::Coupler& c) {
        std::vector<std::string> out;
        for (int v : c.meta().past_vars) out.emplace_back(rsc::kVarNames[v]);
        return out;
      })
      .def_property_readonly("future_vars", [](const rsc::Coupler& c) {
        std::vector<std::string> out;
        for (int v : c.meta().future_vars) out.emplace_back(rsc::kVarNames[v]);
        return out;
      })
      .def_property_readonly("forward_seconds", [](const rsc::Coupler& c) {
        const rsc::InUse in_use(c);
        return c.forward_seconds();
      },
                             "Seconds spent inside the module's forward over all steps.")
      .def_property_readonly("stepping_seconds", [](const rsc::Coupler& c) {
        const rsc::InUse in_use(c);
        return c.stepping_seconds();
      },
                             "Seconds spent inside the C++ step over all steps (forward included).")
      .def("state_size", &rsc::Coupler::state_size);

  m.def("q10_predict", [](const std::string& meta_json, double tsoil_c, double swc_m3m3) {
    return rsc::q10_predict(rsc::parse_model_meta(meta_json).q10, tsoil_c, swc_m3m3);
  }, py::arg("meta_json"), py::arg("tsoil_c"), py::arg("swc"),
     "The core's fallback Q10 for a metadata text at one point [µmol m-2 s-1] (for tests).");

  m.def("validate_meta_json", [](const std::string& text) {
    try {
      rsc::parse_model_meta(text);
    } catch (const rsc::MetaError& e) {
      throw py::value_error(e.what());
    }
  }, py::arg("text"),
     "Run the core's rsoil_meta.json validator on a JSON text; ValueError naming the field (for tests).");

  m.def("resolve_model_path", &rsc::resolve_model_path, py::arg("name_or_path"),
        "The core's model lookup (csrc/model_path.cpp): the path it opens for a model path or a bare name; "
        "FileNotFoundError listing the folders looked in (for tests; rsoil_couple.pretrained.resolve is the same rule).");
  m.def("model_search_dirs", &rsc::model_search_dirs,
        "The core's (folder, where from) pairs a bare model name is looked up in, in order (for tests).");
}
