"""The ``evalkit`` command line: one module per command, mounted in :mod:`evalkit.cli.app`."""
