"""The only code that talks to the Kubernetes API, and the pure builders of what it sends.

- :mod:`suandian.k8s.client`: :class:`KubeApi`, async dict-in/dict-out API calls;
- :mod:`suandian.k8s.jobs`: the child ``batch/v1`` Job and its patches;
- :mod:`suandian.k8s.pods`: scheduling gates and placement of opted-in Pods;
- :mod:`suandian.k8s.decision`: a decision as annotations and status fields;
- :mod:`suandian.k8s.events`: Kubernetes Events.
"""

from suandian.k8s.client import KubeApi
from suandian.k8s.decision import Decision

__all__ = ["Decision", "KubeApi"]
