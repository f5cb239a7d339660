"""A model that is kept loaded, or loaded for each use and freed afterwards.

HuBERT and the speaker-verification network run only when a speaker is prepared, never
during synthesis. Loading them for each preparation keeps their weights (~0.4 and ~0.2 GB
in float32) out of the process while it synthesizes, at the cost of reading the files
again (well under a second from the page cache), which suits a server whose voices are
prepared once and then used many times.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from ..memory import release_free_memory

Model = TypeVar("Model")
Result = TypeVar("Result")


class OnDemand(Generic[Model]):
    """``load()`` once at construction (so bad files fail at start); then keep it, or load per use.

    ``loaded`` is the first load's result when the caller already has it. With
    ``keep_loaded=False`` one load runs at a time, so concurrent uses never hold two copies.
    """

    def __init__(self, load: Callable[[], Model], keep_loaded: bool, loaded: Model | None = None) -> None:
        first = load() if loaded is None else loaded
        self._load = load
        self.kept: Model | None = first if keep_loaded else None
        self._lock = threading.Lock()

    def run(self, use: Callable[[Model], Result]) -> Result:
        """``use(model)``; an unkept model is loaded for the call, then freed; free memory is handed
        back to the OS before the load and after it."""
        if self.kept is not None:
            return use(self.kept)
        with self._lock:
            release_free_memory()  # load into pages synthesis left free, not on top of them
            model = self._load()
            try:
                return use(model)
            finally:
                del model
                release_free_memory()
