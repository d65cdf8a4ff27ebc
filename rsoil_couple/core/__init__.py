"""The C++ inference core from Python: `Coupler`, the cffi C-API binding, `emulate`, build flags, host helpers."""
