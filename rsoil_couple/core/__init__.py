"""The C++ inference core from Python: `Coupler` (pybind11), the cffi C-API binding, `emulate`, build flags, the Fortran host's helpers."""
