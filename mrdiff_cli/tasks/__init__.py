"""Orchestration of io + ops + priors + samplers. No argument parsing, no printing."""
