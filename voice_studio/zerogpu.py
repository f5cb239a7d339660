"""Hugging Face ZeroGPU: a GPU attached per call, following the ``spaces`` package's pattern.

On a ZeroGPU Space (``SPACES_ZERO_GPU`` set) the GPU exists only inside functions decorated
with ``spaces.GPU``, which run in another process. So: ``import spaces`` before torch touches
CUDA (:func:`import_spaces_first`), load the models at start and move them to ``cuda``
outside the decorated functions, keep the decorated functions short and give them a
``duration`` estimated from the work, and never let a lock or a worker thread cross the
boundary: there, synthesis runs directly inside the call (the service's ``serve_directly``).
Everywhere else these helpers change nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

# GPU seconds per request: a fixed part (moving the call, warm-up) and a part per character
BASE_GPU_S = 10
GPU_S_PER_CHAR = 0.25
MAX_GPU_S = 120
CHECK_GPU_S = 2  # transcribing a take with Whisper (and scoring it), on top of synthesizing it


def on_zero_gpu(environ: Mapping[str, str]) -> bool:
    """Whether ``environ`` (the process environment, read once by the server's flag parsing) says
    this runs on a ZeroGPU Space."""
    return environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")


def import_spaces_first() -> None:
    """Import ``spaces`` (when installed) before torch initialises CUDA, as ZeroGPU requires."""
    try:
        import spaces  # noqa: F401
    except ImportError:
        pass


def synthesis_gpu_seconds(text: object, voices: int = 1, checked_takes: int = 0) -> int:
    """The ``duration`` to ask for: grows with the characters to speak and the voices, capped.

    ``checked_takes``: a quality-checked request may synthesize and transcribe up to this many
    takes (its server's tries); 0 for a plain request (one take, nothing transcribed).
    """
    chars = len(text) if isinstance(text, str) else 0
    takes = max(checked_takes, 1)
    per_take = GPU_S_PER_CHAR * chars * max(voices, 1) + (CHECK_GPU_S if checked_takes else 0)
    return min(MAX_GPU_S, BASE_GPU_S + math.ceil(per_take * takes))


def gpu_task(function: Callable, duration: int | Callable[..., int] = BASE_GPU_S) -> Callable:
    """``function`` with a GPU attached for ``duration`` seconds (or ``duration(*args)``) where
    the ``spaces`` package is installed; returned unchanged where it is not.

    Outside a ZeroGPU Space ``spaces.GPU`` runs the function as it is.
    """
    try:
        import spaces
    except ImportError:
        return function
    return spaces.GPU(duration=duration)(function)
