"""Priors: networks, SDE/VDM definitions, model bundles and their resolution."""
