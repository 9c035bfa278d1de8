"""Hydra plugin of robustreg: config schemas and a sweeper that isolates failures.

Hydra imports every module of the ``hydra_plugins`` namespace at start-up,
so the schemas below are in the ConfigStore for ``@hydra.main`` apps and for
``hydra.compose`` alike.
"""
