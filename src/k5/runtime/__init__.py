"""The NumPy reference runtime."""

from k5.runtime.interpreter import RunContext, Session, TraceFn, run

__all__ = ["RunContext", "Session", "TraceFn", "run"]
