"""One exception hierarchy for the whole package.

Every error a user can see derives from :class:`SwarmError`; its message says what went wrong
and, where there is one, what to do about it.
"""

from __future__ import annotations

# `swarm-lsp worker` exits with this when a role it was asked for is not in this build (an
# extra not installed): a process that starts workers tells it apart from a crash without
# importing the worker registry itself.
EXIT_ROLE_UNAVAILABLE = 3
# `swarm-lsp coordinator` and `swarm-lsp node` exit with this when their task store could not
# commit (fail-stop): restarted, they recover their tasks from what the store holds.
EXIT_STORE_FAILED = 4


class SwarmError(Exception):
    """Base class of every swarm-lsp error."""


class ConfigError(SwarmError):
    """A setting is missing or has a bad value."""


class ModelError(SwarmError):
    """A model could not be found, loaded or run."""


class ModelNotFoundError(ModelError):
    """The configured or default model file does not exist."""


class GenerationCancelled(ModelError):
    """Generation stopped because its request was cancelled or superseded."""


class ContextError(SwarmError):
    """Code context could not be built."""


class CompressionError(ContextError):
    """A zstd payload is corrupt, truncated or larger than allowed."""


class LocalityError(SwarmError):
    """A network peer is not on an address the user owns."""


class DispatchError(SwarmError):
    """A task could not be submitted, run or followed."""


class UnknownTaskTypeError(DispatchError):
    """The task type is not one the swarm knows."""


class RoutingTableError(ConfigError):
    """The routing table is malformed; the message names the line at fault."""


class WorkerError(SwarmError):
    """A worker role failed to do its task."""


class ResourceBusy(WorkerError):
    """Another process holds what the task needs (a workspace's on-disk index, say).

    Not the task's fault: a runner that meets it gives the task back for a runner that can
    have the resource (the holder, or anyone once the holder lets go).
    """


class SandboxError(WorkerError):
    """A sandboxed command could not be started or was killed at a limit."""


class DiffValidationError(WorkerError):
    """A diff from a model does not apply, or its result does not parse."""
