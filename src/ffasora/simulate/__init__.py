"""The procedural FFA simulator: seeded cases with anatomy, dye kinetics, lesions, camera and reports.

``simulate_case(seed, ...)`` (:mod:`ffasora.simulate.case`) runs the whole pipeline; the stages live in
``cases``, ``anatomy``, ``vessels``, ``catalog``, ``lesions``, ``kinetics``, ``sampling``, ``render``,
``acquisition`` and ``measure``.
"""

from ffasora.simulate.case import SIMULATOR_VERSION, SimulatedCase, radiometric_series, simulate_case
from ffasora.simulate.cases import MIX
from ffasora.simulate.catalog import BUILDERS
from ffasora.simulate.sampling import SAMPLERS

__all__ = [
    "BUILDERS",
    "MIX",
    "SAMPLERS",
    "SIMULATOR_VERSION",
    "SimulatedCase",
    "radiometric_series",
    "simulate_case",
]
