"""``ffasora`` with the "dit_fixed" test task registered; the LoRA multi-process test runs it under torchrun."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lora_task import register  # noqa: E402

from ffasora.cli import main  # noqa: E402

register()
main()
