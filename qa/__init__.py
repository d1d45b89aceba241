"""Judging a call against the rubric: rule detectors and (later) the call-quality model.

Everything here runs on plain Python and numpy (no torch), because the scoring server runs it on every
call. Rules read their thresholds and phrase lists from the rubric YAML; nothing a centre may want to
change is written in code.
"""
