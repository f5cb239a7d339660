"""Whether the page behind a Gradio event is still there, for handlers that are not generators.

When a page's connection to the queue closes, Gradio 6.31 marks its running events as not
alive (``Queue.clean_events``), but it cannot stop a handler that is a plain function: the
handler runs to its end and the answer goes nowhere. Generators it does close (at their next
``yield``). So a synthesis handler asks here, through its request's cancellation, whether its
event is still alive: the models ask at every step, a request still waiting for its turn every
half second. Gradio keeps this state internally; where it cannot be found (a later Gradio,
ZeroGPU's worker process), the probe never cancels, and the request just runs to its end.
"""

from __future__ import annotations

from collections.abc import Callable

from ..cancellation import Cancellation


def page_cancellation() -> Cancellation:
    """A cancellation for the Gradio event being handled (call it in the handler), cancelled once
    Gradio has marked the event's page gone."""
    probe = _event_gone_probe()
    return Cancellation(probe) if probe is not None else Cancellation()


def _event_gone_probe() -> Callable[[], bool] | None:
    """True once Gradio has marked the current event not alive; None outside an event."""
    from gradio.context import LocalContext

    blocks, event_id = LocalContext.blocks.get(None), LocalContext.event_id.get(None)
    gradio_queue = getattr(blocks, "_queue", None)
    if event_id is None or not hasattr(gradio_queue, "active_jobs"):
        return None

    def gone() -> bool:  # only on evidence: an event of ours found and marked not alive
        return any(getattr(event, "_id", None) == event_id and getattr(event, "alive", True) is False
                   for job in list(gradio_queue.active_jobs) if job for event in job)

    return gone
