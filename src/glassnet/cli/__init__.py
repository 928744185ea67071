"""Interface layer: the ``glassnet`` command."""

from glassnet.cli.main import main

__all__ = ["main"]
