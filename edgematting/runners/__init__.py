"""Runners: one per format, one interface (see base.Runner)."""
