"""Subcommands of the ``tsmnet`` command line, one per module."""
