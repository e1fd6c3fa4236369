"""Test support: the API-server emulator, a tiny cluster simulator, the operator runner."""
