"""Metrics with intervals, statistical tests, figures and the summary of the models stage."""
