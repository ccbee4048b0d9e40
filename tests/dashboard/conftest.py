"""The dispatch tests' swarm fixtures (real processes on loopback, always killed afterwards)."""

from tests.dispatch.conftest import swarm_factory

__all__ = ["swarm_factory"]
