"""Profiling: the sample, every candidate operator's answers on it, and the content-keyed profile store."""
