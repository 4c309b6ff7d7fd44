"""Subcommands of the ``tsmnet`` command line, one per module, registered in :mod:`tsmnet.cli`.

Owns argument parsing, printing and the one way to fail (:mod:`~tsmnet.commands.errors`:
``tsmnet CMD: error: ...``, exit 2). It sits on top and may import everything; nothing but
``cli.py`` imports it. The library is imported when a command runs, so ``--help`` stays fast.
"""
