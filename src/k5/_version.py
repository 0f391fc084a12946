"""The package version, in a leaf module: the format layer stamps it into files without importing the k5 facade."""

__version__ = "0.1.0"
