"""The package version, in a module of its own: cache keys and provenance read it without importing the package
root (which imports the engine)."""

__version__ = "0.1.0"
