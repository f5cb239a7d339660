"""The decoder stage: semantic tokens to audio, by every route a request can take.

After the GPT stage of a wave, every job has the tokens of its next batch of segments. A job
needs one decoder call for the batch (its segments' tokens joined, as the official parallel
decoder does), or one per segment with a speed change. Those calls are made one by one, or,
where batching the decoder pays (on a GPU), all calls of all jobs of the wave go through
:meth:`SoVITS.decode_batch` as one padded batch, which gives each call what it gives alone
(up to float reassociation). Chunks-mode jobs are voiced while their tokens come
(:meth:`SovitsStage.segment_stream`); after the wave they are only closed.

Which stage decodes is the version's ``decoder`` family (:data:`DECODER_STAGES`): the SoVITS
(VITS) decoder of v2 and the v2Pro family here; a CFM + vocoder family would be one more
module with the same three methods and one more row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from ..audio import join_fragments
from ..models.sovits import DecodeItem
from ..versions import VersionInfo
from .jobs import SynthesisJob, segment_result, silence, to_numpy
from .streaming import SegmentStream
from .token_chunks import TokenChunker


@dataclass(frozen=True)
class DecoderCall:
    """One decoder call of a job: (T,) semantic tokens and their (P,) phone ids."""

    tokens: torch.Tensor
    phones: torch.Tensor


class DecoderStage(Protocol):
    """What :class:`~gsv_core.engine.pipeline.VoicePipeline` asks of a decoder family."""

    batched: bool  # whether a wave's calls of all jobs are decoded as one batch

    def decode_wave(self, jobs: dict[int, SynthesisJob], wave: int,
                    tokens: dict[int, list[torch.Tensor]]) -> dict[int, Exception]: ...

    def segment_stream(self, job: SynthesisJob, segment: int) -> SegmentStream: ...


class SovitsStage:
    """Decodes the waves of :meth:`VoicePipeline.synthesize_many`; holds no per-request state."""

    def __init__(self, sovits: torch.nn.Module, sample_rate: int, device: torch.device, batched: bool,
                 mute_similarity: torch.Tensor | None = None) -> None:
        """``mute_similarity`` (vocab,): how much each token sounds like silence, where chunks mode may
        cut a segment (:func:`~gsv_core.engine.token_chunks.mute_similarity`); None: fixed-length chunks only."""
        self.sovits = sovits
        self.sample_rate = sample_rate
        self.device = device
        self.batched = batched  # all non-streaming calls of a wave as one SoVITS.decode_batch
        self.mute_similarity = mute_similarity

    def decode_wave(self, jobs: dict[int, SynthesisJob], wave: int, tokens: dict[int, list[torch.Tensor]]) -> dict[int, Exception]:
        """Store each job's ``wave``-th batch of segments (audio from ``tokens[index]``, one (T,) per segment).

        Returns the jobs that failed. If the batched decode fails, every job decodes alone
        from its state before it, so only the culprit fails. A job whose request says stop
        fails with SynthesisCancelled before its next decoder call; the others decode as before.
        """
        failures: dict[int, Exception] = {}
        calls: dict[int, list[DecoderCall]] = {}
        for index, job in jobs.items():
            try:
                job.check_cancelled()
                self._record_tokens(job, job.batches[wave], tokens[index])
                if job.request.options.stream == "chunks":
                    self._close_streams(job, job.batches[wave], tokens[index])
                else:
                    calls[index] = self._calls(job, job.batches[wave], tokens[index])
            except Exception as error:  # noqa: BLE001 - this request's failure only
                failures[index] = error
        together = None
        if self.batched and sum(len(job_calls) for job_calls in calls.values()) > 1:
            together = self._decode_together({index: jobs[index] for index in calls}, calls)
        for index, job_calls in calls.items():
            job = jobs[index]
            try:
                if together is None:
                    audio = [self._decode_alone(job, call) for call in job_calls]
                else:
                    audio = together[index]
                    del job.noise[: len(job_calls)]  # the injected draws it used
                    for call_audio in audio:
                        self._record_audio(job, call_audio)
                self._store(job, job.batches[wave], tokens[index], audio)
            except Exception as error:  # noqa: BLE001 - this request's failure only
                failures[index] = error
        return failures

    def segment_stream(self, job: SynthesisJob, segment: int) -> SegmentStream:
        """Chunks mode: the stream that voices ``segment`` piece by piece from the GPT stage's steps."""
        options = job.request.options
        phones = torch.tensor(job.sequences[segment].phone_ids, dtype=torch.long, device=self.device).view(1, -1)

        def decode(codes: torch.Tensor, result_tokens: int | None, overlap_frames: torch.Tensor | None):
            chunk = self.sovits.decode_streaming(
                codes.to(self.device).view(1, 1, -1), phones, job.conditioning.global_embedding,
                result_tokens=result_tokens, overlap_frames=overlap_frames, speed=options.speed,
                noise_scale=options.noise_scale, noise=job.noise.pop(0) if job.noise else None, generator=job.generator,
            )
            self._record_audio(job, chunk.audio)
            return chunk

        similarity = None if options.fixed_length_chunk else self.mute_similarity
        job.streams[segment] = SegmentStream(
            TokenChunker(options.min_chunk_length, similarity), decode, options.overlap_length,
            self.sovits.samples_per_token / options.speed,
            emit=lambda audio: job.emit(segment, to_numpy(audio), self.sample_rate),
        )
        return job.streams[segment]

    def _record_tokens(self, job: SynthesisJob, batch: list[int], tokens: list[torch.Tensor]) -> None:
        prompt = job.conditioning.prompt_semantic
        for segment, segment_tokens in zip(batch, tokens):
            full = segment_tokens if prompt is None else torch.cat([prompt, segment_tokens])
            job.inspect(f"t2s_y_full_{segment}", to_numpy(full))

    def _close_streams(self, job: SynthesisJob, batch: list[int], tokens: list[torch.Tensor]) -> None:
        """Chunks mode: voiced while the tokens came; close each segment with its pause."""
        options = job.request.options
        for segment, segment_tokens in zip(batch, tokens):
            chunks = job.streams[segment].chunks
            job.inspect(f"stream_generated_tokens_{segment}", to_numpy(segment_tokens))
            job.inspect(f"stream_chunk_bounds_{segment}", np.asarray([[c.start, c.end] for c in chunks], np.int64))
            job.emit(segment, silence(self.sample_rate, options.fragment_interval), self.sample_rate)
            audio = np.concatenate(job.streamed[segment][:-1] or [np.zeros(0, np.float32)])
            job.segments[segment] = segment_result(job.sequences[segment], segment_tokens, torch.from_numpy(audio))

    def _calls(self, job: SynthesisJob, batch: list[int], tokens: list[torch.Tensor]) -> list[DecoderCall]:
        """At normal speed one call over the batch's joined tokens (cut back into segments later); with a
        speed change one call per segment."""
        phones = [torch.tensor(job.sequences[i].phone_ids, dtype=torch.long, device=self.device) for i in batch]
        if job.request.options.speed != 1.0:
            return [DecoderCall(t, p) for t, p in zip(tokens, phones)]
        return [DecoderCall(torch.cat(tokens), torch.cat(phones))]

    def _decode_alone(self, job: SynthesisJob, call: DecoderCall) -> torch.Tensor:
        """One decoder call -> (samples,) waveform; a cancelled job stops before it (SynthesisCancelled)."""
        job.check_cancelled()
        options = job.request.options
        noise = job.noise.pop(0) if job.noise else None
        audio = self.sovits.decode(
            call.tokens.view(1, 1, -1), call.phones.view(1, -1), job.conditioning.global_embedding,
            speed=options.speed, noise_scale=options.noise_scale, noise=noise, generator=job.generator,
        )[0, 0]
        self._record_audio(job, audio)
        return audio

    def _decode_together(self, jobs: dict[int, SynthesisJob], calls: dict[int, list[DecoderCall]]) -> dict[int, list[torch.Tensor]] | None:
        """Every call of every job as one batched decode; None if it fails, with every job as before it.

        A job's calls draw from its generator in order and take its injected noise in order,
        as alone; the caller uses the noise up and makes the dumps once all succeeded.
        """
        states = {index: job.generator.get_state() for index, job in jobs.items()}
        items = []
        for index, job in jobs.items():
            options = job.request.options
            for k, call in enumerate(calls[index]):
                items.append(DecodeItem(
                    call.tokens.view(1, -1), call.phones, job.conditioning.global_embedding, options.speed,
                    options.noise_scale, job.noise[k] if k < len(job.noise) else None, job.generator,
                ))
        try:
            audio = iter(self.sovits.decode_batch(items))
        except Exception:  # noqa: BLE001 - each job decodes alone to find out which one it was
            for index, job in jobs.items():
                job.generator.set_state(states[index])
            return None
        return {index: [next(audio) for _ in calls[index]] for index in jobs}

    def _record_audio(self, job: SynthesisJob, audio: torch.Tensor) -> None:
        """Every decoder call's bookkeeping: its output under the official dump name, and the count."""
        job.inspect(f"decode_out_{job.decode_calls}", to_numpy(audio).reshape(1, 1, -1))
        job.decode_calls += 1

    def _store(self, job: SynthesisJob, batch: list[int], tokens: list[torch.Tensor], audio: list[torch.Tensor]) -> None:
        """The batch's segments from its calls' audio; in fragments mode, the batch emitted as one piece."""
        options = job.request.options
        if options.speed == 1.0:  # one call over the joined tokens: cut it back into segments
            bounds = np.cumsum([0] + [len(t) * self.sovits.samples_per_token for t in tokens])
            audio = [audio[0][start:end] for start, end in zip(bounds[:-1], bounds[1:])]
        for segment, segment_tokens, fragment in zip(batch, tokens, audio):
            job.segments[segment] = segment_result(job.sequences[segment], segment_tokens, fragment)
        if options.stream == "fragments":  # the batch's segments as one piece, as upstream yields them
            piece = join_fragments([job.segments[i].audio for i in batch], self.sample_rate, options.fragment_interval)
            job.emit(batch[0], piece, self.sample_rate)


# decoder family (VersionInfo.decoder) -> its stage
DECODER_STAGES: dict[str, type] = {"vits": SovitsStage}


def decoder_stage_for(version: VersionInfo, model: torch.nn.Module, sample_rate: int, device: torch.device,
                      batched: bool, mute_similarity: torch.Tensor | None) -> DecoderStage:
    """The stage of ``version``'s decoder family over its loaded ``model``."""
    try:
        stage = DECODER_STAGES[version.decoder]
    except KeyError:
        raise ValueError(f"{version.name} uses the {version.decoder!r} decoder, which this engine does not have; "
                         f"it has {', '.join(DECODER_STAGES)}") from None
    return stage(model, sample_rate, device, batched, mute_similarity)
