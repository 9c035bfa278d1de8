"""The study layer: what a job of a sweep writes and reads, between the library and the entry points.

The library (losses, estimator, data sets) never imports it.
"""
