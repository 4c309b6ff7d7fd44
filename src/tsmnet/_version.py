"""The version of tsmnet, in a module of its own so that modules writing it into files can
import it without importing the package's ``__init__`` order."""

__version__ = '0.1.0'
