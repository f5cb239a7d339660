"""The SoVITS stage of a wave: each job's batch of segments, from semantic tokens to audio.

After the GPT stage of a wave, every job has the tokens of its next batch of segments. A job
needs one decoder call for the batch (its segments' tokens joined, as the official parallel
decoder does), or one per segment with a speed change. Those calls are made one by one, or,
where batching the decoder pays (on a GPU), all calls of all jobs of the wave go through
:meth:`SoVITS.decode_batch` as one padded batch, which gives each call what it gives alone
(up to float reassociation). Chunks-mode jobs were voiced while their tokens came; here they
are only closed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .audio import join_fragments
from .jobs import SynthesisJob, segment_result, silence, to_numpy
from .models.sovits import DecodeItem


@dataclass(frozen=True)
class DecoderCall:
    """One decoder call of a job: (T,) semantic tokens and their (P,) phone ids."""

    tokens: torch.Tensor
    phones: torch.Tensor


class SovitsStage:
    """Decodes the waves of :meth:`VoicePipeline.synthesize_many`; holds no per-request state."""

    def __init__(self, sovits: torch.nn.Module, sample_rate: int, device: torch.device, batched: bool) -> None:
        self.sovits = sovits
        self.sample_rate = sample_rate
        self.device = device
        self.batched = batched  # all non-streaming calls of a wave as one SoVITS.decode_batch

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
