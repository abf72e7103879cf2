"""Variants of a pipeline folder: extra DiTs that share the folder's VAE and text encoder.

A pipeline folder's ``model_index.json`` may list them::

    "variants": {
      "fast": {"dit": "dit_fast", "diffusion": {"steps": 4, "guidance": 1.0, "sampler": "euler"},
               "description": "4-step distilled student"}
    }

``dit`` is a sub-folder of the pipeline folder; ``diffusion`` holds settings merged over the folder's own
diffusion settings (any field of :class:`~ffasora.diffusion.DiffusionConfig`); ``description`` is one line for
people; ``refiner`` (optional, for a DiT that takes a photograph) names a sub-folder holding a photograph-guided
refiner (:mod:`ffasora.models.refiner`) that the pipeline runs on the decoded video when a photograph is given. "standard" names the folder's own ``dit/`` and its own settings; it is not listed. This module owns
these rules (names, keys, folders, the merge); the pipeline and the commands ask it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ffasora.diffusion import DiffusionConfig

STANDARD = "standard"  # the folder's own dit/ and diffusion settings
VARIANT_KEYS = ("dit", "diffusion", "description", "refiner")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_DIFFUSION_FIELDS = tuple(f.name for f in dataclasses.fields(DiffusionConfig))


@dataclass(frozen=True)
class Variant:
    """One entry of ``variants``: a DiT sub-folder and the diffusion settings it overrides."""

    name: str
    dit: str
    diffusion: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    refiner: str = ""  # sub-folder of a photograph-guided refiner; "" = none

    def apply(self, base: DiffusionConfig, source: str = "") -> DiffusionConfig:
        """``base`` with this variant's overrides; ``ValueError`` naming ``source`` and the variant when the
        result is not a valid recipe."""
        try:
            return dataclasses.replace(base, **self.diffusion)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source}: variant {self.name!r}: diffusion settings: {err}") from None

    def to_dict(self) -> dict[str, Any]:
        """The entry as ``model_index.json`` holds it (without the name, which is its key)."""
        entry: dict[str, Any] = {"dit": self.dit, "diffusion": dict(self.diffusion)}
        entry |= {"refiner": self.refiner} if self.refiner else {}
        return entry | ({"description": self.description} if self.description else {})


def check_name(name: str, source: str = "") -> None:
    """Variant names are 1-32 lowercase letters, digits, ``_`` or ``-`` (they name a ``dit_<name>`` folder and
    appear in provenance); "standard" is taken by the folder's own DiT."""
    where = f"{source}: " if source else ""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"{where}variant name {name!r}: expected 1-32 lowercase letters, digits, '_' or '-', "
            "starting with a letter or digit"
        )
    if name == STANDARD:
        raise ValueError(f"{where}variant name {STANDARD!r} is the folder's own dit/; choose another name")


def read_variants(
    index: Mapping[str, Any], root: Path, base: DiffusionConfig, source: str
) -> dict[str, Variant]:
    """The ``variants`` of a parsed ``model_index.json`` (``source`` names it in messages), each checked: its
    name, its keys, its DiT folder under ``root`` and its merged diffusion settings. None listed: ``{}``."""
    listed = index.get("variants", {})
    if not isinstance(listed, dict):
        raise ValueError(f"{source}: 'variants' must be an object of name -> variant, got {listed!r}")
    variants = {}
    for name, entry in listed.items():
        check_name(name, source)
        where = f"{source}: variant {name!r}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected an object with {', '.join(VARIANT_KEYS)}, got {entry!r}")
        unknown = sorted(set(entry) - set(VARIANT_KEYS))
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; expected {', '.join(VARIANT_KEYS)}")
        dit = entry.get("dit", "")
        _check_subfolder(root, where, "dit", dit)
        refiner = entry.get("refiner", "")
        if refiner != "":
            _check_subfolder(root, where, "refiner", refiner)
        diffusion = entry.get("diffusion", {})
        if not isinstance(diffusion, dict):
            raise ValueError(f"{where}: 'diffusion' must be an object of settings, got {diffusion!r}")
        unknown = sorted(set(diffusion) - set(_DIFFUSION_FIELDS))
        if unknown:
            raise ValueError(f"{where}: unknown diffusion setting(s) {unknown}")
        description = entry.get("description", "")
        if not isinstance(description, str):
            raise ValueError(f"{where}: 'description' must be a string, got {description!r}")
        variant = Variant(name, dit, dict(diffusion), description, refiner)
        variant.apply(base, source)
        variants[name] = variant
    return variants


def _check_subfolder(root: Path, where: str, key: str, name: Any) -> None:
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise ValueError(f"{where}: {key!r} must name a sub-folder of the pipeline folder, got {name!r}")
    if not (root / name).is_dir():
        raise ValueError(f"{where}: its {key} folder {name}/ is missing from {root}")


def choose(variants: Mapping[str, Variant], name: str | None, source: str) -> Variant | None:
    """The variant called ``name``; None for the standard model (``name`` None or "standard"); ``ValueError``
    listing the available ones for any other name."""
    if name is None or name == STANDARD:
        return None
    if name not in variants:
        available = ", ".join([STANDARD, *sorted(variants)])
        raise ValueError(f"{source}: no variant {name!r}; available: {available}")
    return variants[name]
