"""Pytest fixtures of the test rig (registered from tests/conftest.py)."""
