"""Where the bundled model lives: package data inside ``ffasora`` (``ffasora/pretrained``, docs/bundled-model.md).

Found with :mod:`importlib.resources`, so an editable install, ``pip install .`` and a wheel all find it and
``ffasora generate`` needs no ``--model``. (In a checkout, ``pretrained/`` at the top is a link to it.)
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

PACKAGE_DATA = "pretrained"
INDEX = "model_index.json"


def bundled_model() -> Path:
    """The bundled pipeline folder; ``ValueError`` naming where it was looked for when it is missing."""
    # Installed packages are directories on disk (ffasora is never imported from a zip), so the traversable
    # is a real path that the loaders can open.
    folder = Path(str(resources.files("ffasora") / PACKAGE_DATA))
    if not (folder / INDEX).is_file():
        raise ValueError(
            f"no bundled model at {folder} ({INDEX} missing): this ffasora was installed without its "
            "package data; pass a pipeline folder"
        )
    return folder
