"""The code sandbox behind the engine's ``CodeExecutor`` port (§4.3)."""

from sluice.adapters.sandbox.executor import SandboxLimits, SubprocessCodeExecutor

__all__ = ["SandboxLimits", "SubprocessCodeExecutor"]
