"""``ffasora`` with the tiny test tasks registered; the multi-process tests run it under torchrun."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tiny_train_task import register  # noqa: E402

from ffasora.cli import main  # noqa: E402

register()
main()
