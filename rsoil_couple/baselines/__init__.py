"""Baselines and analysis without torch: the Q10 family and CLM-structure respiration, lagged mutual information."""
