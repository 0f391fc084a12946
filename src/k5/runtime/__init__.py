"""The NumPy reference runtime."""

from k5.runtime.interpreter import KernelObserver, RunContext, Session, TraceFn, observe_kernels, run

__all__ = ["KernelObserver", "RunContext", "Session", "TraceFn", "observe_kernels", "run"]
