"""Synthesis requests, from admission to the log: what the UI and REST share for speaking.

Every request is admitted (bounded), checked completely (text, options, voice, segments after
normalization) before it joins a batch, served by the queue's worker (or, under ZeroGPU, in
the calling thread), scored for speaker similarity, and logged as one line whatever its outcome.
A request whose client goes away is cancelled (:mod:`voice_studio.cancellation`): its admission
ticket and queue slot are given back at once, the models drop it at their next step or chunk,
and its line says ``"outcome": "cancelled"``.
A quality-checked request holds one admission ticket for all its takes; each take joins the
queue like any request, and its one log line carries the takes made (``tries``), the kept
``seed`` and its character error rate (``cer``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass
from functools import partial

from gsv_core.engine.pipeline import VoicePipeline
from gsv_core.speakers import SpeakerInfo, SpeakerLibrary, SpeakerNotFound
from gsv_core.engine.requests import SynthesisCancelled, SynthesisOptions, SynthesisRequest, SynthesisResult
from gsv_core.text.errors import TextError

from .access import AccessPolicy
from .admission import Admission, Ticket
from .cancellation import Cancellation, RequestCancelled
from .errors import ServiceError, scrub_paths, unexpected
from .limits import Limits, check_segments, recheck_options
from .model_host import ModelHost
from .quality_check import QualityCheck
from .served import ServedResult
from .synthesis_log import SynthesisLog
from .synthesis_queue import QueueBusy, SynthesisQueue
from .synthesis_stream import SynthesisStream
from .voice_similarity import SimilarityScorer

ProgressFn = Callable[[float, str], None]
LOGGER = logging.getLogger("voice_studio.synthesis")


@dataclass(frozen=True)
class _Queued:
    """A checked request, its voice and its expected seconds of audio (the queue batches similar lengths)."""

    request: SynthesisRequest
    expected_s: float
    info: SpeakerInfo


@dataclass(frozen=True)
class DeskSettings:
    """The desk's bounds and choices, from the server's configuration."""

    limits: Limits
    max_chars: int = 150  # characters per request
    max_batch: int = 4  # requests served together
    max_waiting: int = 32  # requests waiting beyond the running ones; past it, 503 busy
    serve_directly: bool = False  # ZeroGPU: serve in the calling thread, never through the queue's worker
    quality_default: bool = False  # whether requests that do not say are quality-checked


@dataclass(frozen=True)
class Voices:
    """Where a request's voice comes from: the library, and who may use which of its voices."""

    library: SpeakerLibrary
    access: AccessPolicy


class SynthesisDesk:
    """Admits, checks, queues, serves and logs synthesis requests for the service."""

    def __init__(self, models: ModelHost, voices: Voices, log: SynthesisLog, settings: DeskSettings,
                 scorer: SimilarityScorer, quality: QualityCheck) -> None:
        self.models, self.log, self.settings = models, log, settings
        self.access, self.library, self.limits = voices.access, voices.library, settings.limits
        self.scorer, self.quality = scorer, quality
        # everything admitted has a thread at once and a queue slot: nothing waits unbounded
        self.admission = Admission(settings.max_waiting + settings.max_batch)
        # the queue holds whatever admission let in: until the worker takes a batch, the requests about
        # to be served count as waiting too, so a bound of ``max_waiting`` alone would refuse admitted ones
        self._queue = SynthesisQueue(self._serve, max_batch=settings.max_batch,
                                     max_waiting=settings.max_waiting + settings.max_batch,
                                     cost=lambda queued: queued.expected_s)

    def pipeline(self) -> VoicePipeline:
        return self.models.pipeline()

    def admit(self, text: str, speaker_ids: list[str], language: str) -> Ticket:
        """Admission for these requests, or 503 (logged) when the app holds as many as it may."""
        try:
            return self.admission.enter(len(speaker_ids))
        except ServiceError as error:
            for speaker_id in speaker_ids:
                self.log_refusal(text, speaker_id, language, error)
            raise

    def _admitted(self, ticket: Ticket | None, cancellation: Cancellation | None, text: str, speaker_ids: list[str],
                  language: str) -> tuple[Ticket, Cancellation]:
        """The request's ticket (admitted here unless the caller did) and its cancellation, which gives
        the ticket back at once when cancelled."""
        ticket = ticket or self.admit(text, speaker_ids, language)
        cancellation = cancellation or Cancellation()
        cancellation.on_cancel(ticket.close)
        return ticket, cancellation

    def log_refusal(self, text: object, speaker_id: object, language: object, error: ServiceError) -> None:
        """Log a synthesis request refused before it was checked (bad body, options, busy)."""
        record = self.log.record(text if isinstance(text, str) else "", str(speaker_id)[:80] if speaker_id else None,
                                 str(language)[:20] if language else None)
        self.log_failure(record, time.perf_counter(), error)

    def synthesize(self, text: str, speaker_id: str, language: str, options: SynthesisOptions,
                   session: str | None, progress: ProgressFn | None = None, ticket: Ticket | None = None,
                   token: str | None = None, quality_check: bool | None = None,
                   cancellation: Cancellation | None = None) -> ServedResult:
        """Speak ``text``; every call is logged as one JSON line, successful or not.

        Requests from concurrent callers are served together (see :class:`SynthesisQueue`).
        ``quality_check`` (None: the server's default) transcribes each take and tries the next
        seed while it reads wrong; the result's ``quality`` says what was found. ``cancellation``,
        once cancelled, ends the request (RequestCancelled) and frees its slot at once.
        """
        if not self.quality_wanted(quality_check):
            return self.synthesize_each(text, [speaker_id], language, options, session, progress, ticket, token,
                                        cancellation)[0]
        started = time.perf_counter()
        ticket, cancellation = self._admitted(ticket, cancellation, text, [speaker_id], language)
        with ticket:
            record = self.log.record(text, speaker_id, language)
            try:
                item = self._checked(text, speaker_id, language, options, session, progress, token, cancellation)
                result = self.quality.run(partial(self._take, item, cancellation), text, language,
                                          item.request.options.seed, progress)
            except Exception as error:
                refusal = error if isinstance(error, ServiceError) else unexpected(error, "checking a synthesis")
                self.log_failure(record, started, refusal)
                raise refusal from None
            return self._finish(record, started, item, result)  # (ServedResult: with its quality report)

    def quality_wanted(self, quality_check: bool | None) -> bool:
        """Whether a request runs the quality check: its own choice, else the server's default."""
        return self.settings.quality_default if quality_check is None else quality_check

    def _take(self, item: _Queued, cancellation: Cancellation, seed: int) -> SynthesisResult:
        """One take of a checked request with ``seed``, through the queue like any request."""
        options = dataclasses.replace(item.request.options, seed=seed)
        take = dataclasses.replace(item, request=dataclasses.replace(item.request, options=options))
        return self._outcome(None, iter(self._queued([take], cancellation)), cancellation)

    def synthesize_each(self, text: str, speaker_ids: list[str], language: str, options: SynthesisOptions,
                        session: str | None, progress: ProgressFn | None = None, ticket: Ticket | None = None,
                        token: str | None = None, cancellation: Cancellation | None = None) -> list[ServedResult]:
        """One text in several voices, queued at once so that they can share a batch (Compare tab).

        Every request is checked completely before it is queued; raises the first failure
        after every request has finished and been logged. ``cancellation`` cancels them all.
        """
        started = time.perf_counter()
        ticket, cancellation = self._admitted(ticket, cancellation, text, speaker_ids, language)
        with ticket:
            pending: list[_Queued | ServiceError] = []
            for speaker_id in speaker_ids:
                try:
                    pending.append(self._checked(text, speaker_id, language, options, session, progress, token,
                                                 cancellation))
                except Exception as error:
                    pending.append(unexpected(error, "checking a synthesis request"))
            return self._run(pending, text, speaker_ids, language, started, cancellation)

    def synthesize_stream(self, text: str, speaker_id: str, language: str, options: SynthesisOptions,
                          session: str | None, mode: str = "chunks", ticket: Ticket | None = None,
                          token: str | None = None, on_result: Callable[[ServedResult], None] | None = None,
                          cancellation: Cancellation | None = None) -> SynthesisStream:
        """Speak ``text`` piece by piece (``mode``: "chunks" or "fragments").

        The request is checked and queued at once, so a refusal raises ServiceError before any
        audio; the returned stream then yields the pieces as the queue's worker makes them
        (streamed requests share GPT batches with the others). A failure during synthesis ends
        the iteration with a ServiceError; either way the outcome is logged. ``on_result`` receives
        the whole result (with its similarity) after the last piece: a page can show its score.
        Closing the stream before its end (or cancelling ``cancellation``) cancels the request.
        """
        started = time.perf_counter()
        ticket, cancellation = self._admitted(ticket, cancellation, text, [speaker_id], language)
        record = self.log.record(text, speaker_id, language)
        stream = SynthesisStream(cancellation, ticket, partial(self._streamed, record, started, on_result),
                                 partial(self.log_failure, record, started))
        try:
            item = self._checked(text, speaker_id, language, options, session, None, token, cancellation)
            request = dataclasses.replace(item.request, options=dataclasses.replace(item.request.options, stream=mode),
                                          on_audio=stream.put)
            (future,) = self._queued([dataclasses.replace(item, request=request)], cancellation)
        except ServiceError as error:
            ticket.close()
            self.log_failure(record, started, error)
            raise
        stream.follow(future, item)
        return stream

    def _streamed(self, record: dict, started: float, on_result: Callable[[ServedResult], None] | None,
                  future: Future, item: _Queued) -> None:
        """A streamed request's end: its outcome logged (ServiceError raised on failure), ``on_result`` told."""
        result = self._finish(record, started, item, ServedResult(self._outcome(None, iter([future]), None)), streamed=True)
        if on_result is not None:
            on_result(result)

    def _run(self, pending: list[_Queued | ServiceError], text: str, speaker_ids: list[str], language: str,
             started: float, cancellation: Cancellation) -> list[ServedResult]:
        queued = [item for item in pending if isinstance(item, _Queued)]
        try:
            futures = iter(self._queued(queued, cancellation))
        except ServiceError as busy:
            futures = iter(())
            pending = [busy if isinstance(item, _Queued) else item for item in pending]
        results, failure = [], None
        for speaker_id, item in zip(speaker_ids, pending):
            record = self.log.record(text, speaker_id, language)
            try:
                result = self._outcome(item, futures, cancellation)
            except ServiceError as error:
                self.log_failure(record, started, error)
                failure = failure or error
                continue
            results.append(self._finish(record, started, item, ServedResult(result)))
        if failure is not None:
            raise failure
        return results

    def log_failure(self, record: dict, started: float, error: ServiceError) -> None:
        """A request's line when it did not end in audio: "cancelled" when its client went away, else "error"."""
        self.log.write(record, started, outcome="cancelled" if isinstance(error, RequestCancelled) else "error",
                       status=error.status, error=str(error), **({"error_id": error.error_id} if error.error_id else {}))

    def _finish(self, record: dict, started: float, item: _Queued, served: ServedResult,
                streamed: bool = False) -> ServedResult:
        """``served`` with its speaker similarity, logged as the request's "ok" line (``rtf``:
        synthesis alone, every take of a checked request included; ``wall_s``: the scoring too)."""
        wall = time.perf_counter() - started
        served = dataclasses.replace(served, similarity=self.scorer.score(self.pipeline(), item.request.speaker,
                                                                          served.result))
        timing = {"streamed": True} if streamed else {"rtf": round(wall / max(served.duration_s, 1e-6), 3)}
        self.log.write(record, started, outcome="ok", audio_s=round(served.duration_s, 3), **timing,
                       batch=served.timings.get("requests_in_batch", 1), **outcome_fields(served))
        return served

    @staticmethod
    def _outcome(item: _Queued | ServiceError | None, futures: Iterator,
                 cancellation: Cancellation | None) -> SynthesisResult:
        """The next future's result (or ``item``'s refusal), waited for as ``cancellation`` says; failures
        as ServiceError: a cancelled request's is RequestCancelled."""
        if isinstance(item, ServiceError):
            raise item
        try:
            future = next(futures)
            return future.result() if cancellation is None else cancellation.result(future)
        except ServiceError:
            raise
        except (SynthesisCancelled, CancelledError):  # stopped by the models, or withdrawn from the queue
            raise RequestCancelled() from None
        except ValueError as error:  # the core refuses in plain English (TextError, bad speaker)
            raise ServiceError(scrub_paths(str(error))) from error
        except Exception as error:  # torch and everything else: never shown, logged with an id
            raise unexpected(error, "synthesizing") from error

    def _checked(self, text: str, speaker_id: str, language: str, options: SynthesisOptions, session: str | None,
                 progress: ProgressFn | None, token: str | None, cancellation: Cancellation) -> _Queued:
        """A request checked completely: text, options, speaker, segments after normalization, conditioning;
        the models stop it once ``cancellation`` says so."""
        if not isinstance(text, str) or not text.strip():
            raise ServiceError("the text is empty")
        if len(text) > self.settings.max_chars:
            raise ServiceError(f"the text has {len(text)} characters; the limit is {self.settings.max_chars}")
        options = recheck_options(options, self.limits)
        info = self.access.visible(self.library, speaker_id, session, token)
        pipeline = self.pipeline()
        try:  # read once: checked here, and the request carries it, so the pipeline does not read it again
            prepared = pipeline.prepare_text(text, language, options)
        except TextError as error:
            raise ServiceError(str(error)) from error
        expected = check_segments(prepared.phone_counts, prepared.segment_chars, options, self.limits,
                                  prepared.max_bert_chars)
        speaker = self._conditioning(info, pipeline)
        request = SynthesisRequest(text, language, speaker, options, progress, prepared_text=prepared,
                                   should_stop=cancellation.should_stop)
        return _Queued(request, expected, info)

    def _conditioning(self, info: SpeakerInfo, pipeline: VoicePipeline):
        """The speaker's embeddings (computed on first use); a voice deleted meanwhile is a 404, not a 500."""
        try:
            return self.library.conditioning(info.id, prepare=pipeline.prepare_speaker, weights_key=pipeline.weights_key)
        except SpeakerNotFound as error:
            raise ServiceError(f"the voice {info.id!r} was deleted while it was being prepared", status=404) from error
        except Exception as error:
            raise unexpected(error, f"preparing the voice {info.id!r}") from error

    def _queued(self, items: list[_Queued], cancellation: Cancellation) -> list[Future]:
        """:meth:`_submit`, each request withdrawn from the queue when ``cancellation`` is cancelled
        (a running one stops on its own); a full queue is a 503 ServiceError."""
        try:
            futures = self._submit(items)
        except QueueBusy as error:
            raise ServiceError(str(error), status=503, headers={"Retry-After": "10"}) from None
        for future in futures:
            cancellation.on_cancel(partial(self._queue.withdraw, future))
        return futures

    def _submit(self, items: list[_Queued]) -> list[Future]:
        """Futures of the requests' outcomes: from the queue's worker, or (``serve_directly``) served now."""
        if not self.settings.serve_directly:
            return self._queue.submit_many(items)
        futures = [Future() for _ in items]
        for future, outcome in zip(futures, self._serve(items) if items else []):
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
        return futures

    def _serve(self, items: list[_Queued]) -> list[SynthesisResult | Exception]:
        """One batch through the pipeline; if it fails as a whole, each request alone, so only the culprit fails."""
        requests = [item.request for item in items]
        try:
            outcomes = list(self.pipeline().synthesize_many(requests))
            if len(outcomes) != len(requests):
                raise RuntimeError(f"served {len(outcomes)} outcomes for {len(requests)} requests")
            return outcomes
        except Exception as error:
            if len(requests) == 1:
                return [error]
            LOGGER.warning("a batch of %d failed as a whole (%r); serving them one by one", len(requests), error)
            return [self._serve_alone(request) for request in requests]

    def _serve_alone(self, request: SynthesisRequest) -> SynthesisResult | Exception:
        try:
            return self.pipeline().synthesize_many([request])[0]
        except Exception as error:
            return error


def outcome_fields(result: ServedResult) -> dict:
    """What a log line reports of a result: its seed, similarity (None: not available) and, when
    the quality check ran, its error rate (None: not measured), takes and note."""
    fields = {"seed": result.seed, "similarity": None if result.similarity is None else round(result.similarity, 4)}
    report = result.quality
    if report is not None:
        fields.update(cer=None if report.cer is None else round(report.cer, 4), tries=report.tries)
        if report.note:
            fields["quality_note"] = report.note
    return fields

