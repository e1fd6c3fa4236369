"""Suandian (算电): a Kubernetes operator that makes compute follow green power."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("suandian")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
