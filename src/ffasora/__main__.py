"""``python -m ffasora`` (used under ``torchrun``)."""

from ffasora.cli import main

main()
