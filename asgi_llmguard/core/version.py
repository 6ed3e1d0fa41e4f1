"""The package's version, in a module of its own at the bottom: anything may import it, it imports nothing."""

__version__ = "0.1.0"
