"""Experiments run on the specification: data sets, training loops, evaluation, format and
learning-width sweeps, the convergence study, reports and plots.

``golden_model`` is the hardware specification alone; everything that *uses* it on data lives here.
"""
