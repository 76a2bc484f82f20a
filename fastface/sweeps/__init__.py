"""Sweeps: datasets of identities and prompts (:mod:`fastface.sweeps.dataset`), capture sweeps
into a store (:mod:`fastface.sweeps.sweep`), and the Ray side (:mod:`fastface.sweeps.sweep_ray`
on the actor pool of :mod:`fastface.sweeps.distributed`, set up by :mod:`fastface.sweeps.ray_setup`).
"""
