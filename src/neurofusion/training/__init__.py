"""Cohort assembly, cross-validation splits and training of every model of the study."""
