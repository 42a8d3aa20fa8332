"""Samplers: plain functions over a noise schedule (predictor/corrector, fast DDS-style, VDM-guided),
noise schedules, and data-consistency steps (hard projection, soft lambda step, Kaczmarz SENSE sweep, CG)."""
