"""statusd: tell a library's public, at once and everywhere, whether it is open."""

__version__ = "0.1.0"
