"""rsoil_couple: knowledge-guided deep-learning soil respiration for land models (Jiang et al. 2022)."""
__version__ = "0.1.0"
