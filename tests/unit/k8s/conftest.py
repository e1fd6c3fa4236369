"""Fixtures of the Kubernetes-access tests."""

from __future__ import annotations

import shutil

import pytest
from tests.support.pki import Pki, make_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, a server certificate for 127.0.0.1 and a client certificate (openssl)."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl binary to make test certificates with")
    return make_pki(tmp_path_factory.mktemp("pki"))
