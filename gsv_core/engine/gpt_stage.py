"""The GPT stage of a wave: the next batch of segments of every job, decoded as one batch of rows.

Each segment becomes one :class:`~gsv_core.models.t2s.DecodeRow`: the speaker's prompt phones
and BERT features before the segment's own (its BERT features made when its turn comes, so the
first audio need not wait for every segment), the prompt's semantic tokens, the job's sampling
options and generator. :meth:`Text2Semantic.generate` decodes all rows together; rows of one
job draw from its generator in the order a job served alone draws it.
"""

from __future__ import annotations

import torch

from ..features.bert import BertFeatures
from ..models.t2s import DecodeRow, Text2Semantic
from .decoder_stage import DecoderStage
from .jobs import SynthesisJob, segment_message


class GptStage:
    """Semantic tokens for the waves of :meth:`VoicePipeline.synthesize_many`; holds no per-request state."""

    def __init__(self, t2s: Text2Semantic, bert: BertFeatures, decoder: DecoderStage, device: torch.device) -> None:
        self.t2s = t2s
        self.bert = bert
        self.decoder = decoder  # chunks mode: its streams voice a segment while its tokens come
        self.device = device

    def generate_wave(self, jobs: list[SynthesisJob], wave: int) -> list[list[torch.Tensor | None]]:
        """Semantic tokens (T,) of each job's ``wave``-th batch of segments: per job a list in batch order
        (None for a row whose request was cancelled)."""
        rows: list[DecodeRow] = []
        for job in jobs:
            batch = job.batches[wave]
            job.report(0.05 + 0.9 * wave / len(job.batches), segment_message(batch, len(job.sequences)))
            for segment in batch:
                rows.append(self._decode_row(job, segment))
        tokens = iter(self.t2s.generate(rows))
        return [[next(tokens) for _ in job.batches[wave]] for job in jobs]

    def _decode_row(self, job: SynthesisJob, segment: int) -> DecodeRow:
        conditioning = job.conditioning
        phones = torch.tensor(job.sequences[segment].phone_ids, dtype=torch.long, device=self.device)
        if segment not in job.target_bert:  # when the segment's turn comes: the first audio need not wait for all
            job.target_bert[segment] = self.bert.sequence_features(job.sequences[segment].parts)
        bert = job.target_bert[segment].to(self.device)
        if conditioning.prompt_phones is not None:
            phones = torch.cat([conditioning.prompt_phones, phones])
            bert = torch.cat([conditioning.prompt_bert, bert], dim=1)
        stream = self.decoder.segment_stream(job, segment) if job.request.options.stream == "chunks" else None
        return DecodeRow(phones, bert, conditioning.prompt_semantic, job.request.options.sampling(), job.generator,
                         on_step=None if stream is None else stream.on_step, should_stop=job.request.should_stop)
