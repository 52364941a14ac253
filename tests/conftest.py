"""Shared test setup: register the fake provider used by the tests of the shared machinery."""

from tests.fakes import register

register()
