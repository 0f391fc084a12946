"""The k5 package version: a leaf module, so any layer can read it without importing the ``k5`` package."""

__version__ = "0.1.0"
