"""A speaker's conditioning as tensors on the device, and a bounded cache of hot speakers.

The speaker library hands out the same :class:`SpeakerConditioning` object while a speaker
is hot (its cache is the one that decides which speakers are kept), so its tensors are moved
to the GPU once, not per request, and go when that object goes.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from ..conditioning import SpeakerConditioning


@dataclass(frozen=True)
class SpeakerTensors:
    prompt_phones: torch.Tensor | None  # (P,) int64
    prompt_bert: torch.Tensor | None  # (1024, P)
    prompt_semantic: torch.Tensor | None  # (T,) int64
    global_embedding: torch.Tensor  # (1, C, 1)

    @classmethod
    def of(cls, speaker: SpeakerConditioning, device: torch.device) -> "SpeakerTensors":
        def tensor(array: np.ndarray | None) -> torch.Tensor | None:
            return None if array is None else torch.from_numpy(np.ascontiguousarray(array)).to(device)

        return cls(tensor(speaker.prompt_phones), tensor(speaker.prompt_bert), tensor(speaker.prompt_semantic),
                   tensor(speaker.global_embedding))


class DeviceSpeakers:
    """A bounded LRU of speakers' tensors on ``device``, keyed by the conditioning object itself.

    An entry holds only a weak reference to its key object, so a forgotten speaker is never
    matched by a new object that happens to reuse its ``id``, and it is dropped as soon as that
    object is (the library evicted it): ``capacity`` only bounds callers that keep many alive.
    Safe across threads.
    """

    def __init__(self, device: torch.device, capacity: int = 16) -> None:
        self.device = device
        self.capacity = capacity
        self._items: OrderedDict[int, tuple[weakref.ref, SpeakerTensors]] = OrderedDict()
        self._lock = threading.Lock()
        # weak references whose speaker is gone, dropped at the next call: their callbacks may run inside
        # any allocation (the garbage collector), even while this thread holds the lock, so they only append
        self._dead: list[tuple[int, weakref.ref]] = []

    def get(self, speaker: SpeakerConditioning) -> SpeakerTensors:
        key = id(speaker)
        with self._lock:
            self._drop_dead()
            entry = self._items.get(key)
            if entry is not None and entry[0]() is speaker:
                self._items.move_to_end(key)
                return entry[1]
        tensors = SpeakerTensors.of(speaker, self.device)
        reference = weakref.ref(speaker, lambda dead, key=key: self._dead.append((key, dead)))
        with self._lock:
            self._items[key] = (reference, tensors)
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return tensors

    def _drop_dead(self) -> None:
        """Forget the speakers that are gone (called with the lock held)."""
        while self._dead:
            key, dead = self._dead.pop()
            entry = self._items.get(key)
            if entry is not None and entry[0] is dead:  # not a newer speaker at the same address
                del self._items[key]

    def __len__(self) -> int:
        with self._lock:
            self._drop_dead()
            return len(self._items)
