"""The admission webhook's server, which tells the probes when it listens.

Kopf starts the liveness endpoint at once but the webhook server only after it has
discovered the API's resources: seconds on a loaded control plane. In that gap the pod
reports ready, the Service sends it the API server's admission reviews, the connection
is refused, and under the chart's ``failurePolicy: Ignore`` every managed Pod created
then is admitted without its scheduling gate: it starts at once, wherever and whenever.
:class:`ListeningWebhook` wraps kopf's server and records when it listens, and the
``webhook`` probe (see :func:`suandian.controllers.build`) fails until it does, so the
pod is not ready (and gets no admission traffic) before it can gate.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from types import TracebackType

import kopf

__all__ = ["ListeningWebhook"]


class ListeningWebhook:
    """A kopf admission server (the ``settings.admission.server`` protocol) that knows
    whether it listens: from the first client config the inner server yields (kopf's
    :class:`kopf.WebhookServer` yields it once its socket is bound) until it stops."""

    def __init__(self, server: kopf.WebhookServer) -> None:
        self.server = server
        self.listening = False
        self._served: AsyncGenerator[kopf.WebhookClientConfig, None] | None = None

    def __call__(self, fn: kopf.WebhookFn) -> AsyncIterator[kopf.WebhookClientConfig]:
        self._served = self._serve(fn)
        return self._served

    async def _serve(self, fn: kopf.WebhookFn) -> AsyncGenerator[kopf.WebhookClientConfig, None]:
        try:
            async for config in self.server(fn):
                self.listening = True
                yield config
        finally:
            self.listening = False

    async def __aenter__(self) -> ListeningWebhook:
        await self.server.__aenter__()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        # close ours first (it stops iterating the inner one), then let kopf's server
        # release its socket the way it does for itself
        if self._served is not None:
            await self._served.aclose()
        await self.server.__aexit__(exc_type, exc, tb)

    def health(self) -> str:
        """What the probe reports; raises :class:`kopf.PermanentError` while the server
        does not listen (permanent: kopf fails the probe at once, no handler retries)."""
        if not self.listening:
            raise kopf.PermanentError(
                "the admission webhook does not listen yet (kopf starts it once the API's "
                "resources are discovered): a Pod admitted now would get no scheduling gate")
        return f"listening on {self.server.addr or 'localhost'}:{self.server.port}"
