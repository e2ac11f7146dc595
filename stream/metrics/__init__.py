"""Prometheus exposition: the figures (a snapshot collector) and the pipeline's health."""
