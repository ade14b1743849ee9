"""``python -m evalkit``: the same as the ``evalkit`` command."""

from evalkit.cli.app import main

main()
