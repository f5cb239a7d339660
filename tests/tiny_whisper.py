"""A random-weight Whisper behind the real transformers ASR pipeline, built offline.

Nothing is downloaded: the tokenizer is a byte-level vocabulary (256 byte tokens, no
merges) followed by Whisper's special tokens and its 1501 timestamp tokens, in Whisper's
order (timestamps right after ``<|notimestamps|>``, which is how transformers finds them);
the model comes from a ``WhisperConfig``; the feature extractor from its defaults. The
words it produces are noise; the interface (call signature, ``chunks``, language tokens,
long-form decoding) is the real one. Used by tests and ``benchmarks/bench_quality.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

LANGUAGE_CODES = ("en", "zh", "de", "es", "ru", "ko", "fr", "ja", "yue")


@dataclass(frozen=True)
class WhisperSize:
    """Model dimensions: the tiny default for tests; ``SMALL`` is whisper-small's shape."""

    d_model: int = 16
    layers: int = 1
    heads: int = 2
    ffn: int = 32
    vocab_size: int | None = None  # None: just the tokens above; 51865 for the real output layer


SMALL = WhisperSize(d_model=768, layers=12, heads=12, ffn=3072, vocab_size=51865)


def tiny_whisper_pipeline(device: str = "cpu", size: WhisperSize = WhisperSize(), max_length: int = 12, seed: int = 0):
    """The ``transformers.pipeline("automatic-speech-recognition")`` of a random Whisper.

    ``max_length``: decoder tokens per 30 s window, prompt included (random weights rarely stop).
    """
    import torch
    from transformers import (GenerationConfig, WhisperConfig, WhisperFeatureExtractor,
                              WhisperForConditionalGeneration, WhisperTokenizer, pipeline)
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    tokenizer = WhisperTokenizer(vocab={char: i for i, char in enumerate(bytes_to_unicode().values())}, merges=[])
    languages = [f"<|{code}|>" for code in LANGUAGE_CODES]
    tokenizer.add_special_tokens({"additional_special_tokens": [
        "<|startoftranscript|>", *languages, "<|translate|>", "<|transcribe|>", "<|startoflm|>",
        "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>"]})
    tokenizer.add_tokens([f"<|{i * 0.02:.2f}|>" for i in range(1501)])
    ids = tokenizer.convert_tokens_to_ids
    end, start = ids("<|endoftext|>"), ids("<|startoftranscript|>")
    vocab_size = size.vocab_size or len(tokenizer)
    config = WhisperConfig(
        vocab_size=vocab_size, num_mel_bins=80, d_model=size.d_model, encoder_layers=size.layers,
        decoder_layers=size.layers, encoder_attention_heads=size.heads, decoder_attention_heads=size.heads,
        encoder_ffn_dim=size.ffn, decoder_ffn_dim=size.ffn, max_source_positions=1500,
        max_target_positions=max(32, max_length), pad_token_id=end, bos_token_id=end, eos_token_id=end,
        decoder_start_token_id=start,
    )
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config).eval()
    if vocab_size > len(tokenizer):  # output rows past the tokenizer never win, so every id decodes
        with torch.no_grad():
            model.proj_out.weight[len(tokenizer):] = 0.0
            model.model.decoder.embed_tokens.weight[len(tokenizer):] = 0.0
    model.generation_config = GenerationConfig(
        decoder_start_token_id=start, eos_token_id=end, pad_token_id=end, bos_token_id=end,
        no_timestamps_token_id=ids("<|notimestamps|>"), prev_sot_token_id=ids("<|startofprev|>"),
        is_multilingual=True, lang_to_id={token: ids(token) for token in languages},
        task_to_id={"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")},
        max_initial_timestamp_index=50, max_length=max_length, num_beams=1, do_sample=False,
        begin_suppress_tokens=[end], suppress_tokens=[],
    )
    return pipeline("automatic-speech-recognition", model=model, tokenizer=tokenizer,
                    feature_extractor=WhisperFeatureExtractor(feature_size=80), device=device)
