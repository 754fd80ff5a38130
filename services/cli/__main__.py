"""``python -m services.cli``: the ``pointsnet`` command."""

from services.cli import main

main()
