"""How decisions become objects on a cluster: one small backend per way to act.

See :mod:`suandian.backends.base` for the interface; :func:`backend_for` picks the one
``SUANDIAN_MODE`` names.
"""

from suandian.backends.base import Backend, CapacityView, Feed, Patch
from suandian.backends.karmada import KarmadaBackend
from suandian.backends.kueue import KueueBackend
from suandian.backends.native import NativeBackend
from suandian.config import Settings

__all__ = ["Backend", "CapacityView", "Feed", "KarmadaBackend", "KueueBackend", "NativeBackend",
           "Patch", "backend_for"]


def backend_for(settings: Settings) -> NativeBackend | KueueBackend | KarmadaBackend:
    """The backend of the mode the settings name."""
    if settings.mode == "kueue":
        return KueueBackend(queue=settings.kueue_queue)
    if settings.mode == "karmada":
        return KarmadaBackend()
    return NativeBackend()
