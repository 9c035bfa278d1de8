"""Hydra plugin of robustreg: a sweeper and a launcher for sweeps of many small jobs.

Hydra imports the public modules of the ``hydra_plugins`` namespace in every
Hydra app of the environment; they hold only configs and thin classes, and
import nothing of robustreg.  The work is in the private ``_*_core.py``
modules, which plugin discovery skips.  robustreg's config schemas are
registered by its entry point (:func:`robustreg.study.schemas.register_schemas`).
"""
