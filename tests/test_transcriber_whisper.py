"""transcribe_segments through the real transformers ASR pipeline, with a tiny random Whisper.

Nothing is downloaded: the model is built from a small ``WhisperConfig`` (hidden 16, one layer
each side), the tokenizer from a byte-level vocabulary made here with Whisper's special and
timestamp tokens, the feature extractor from its defaults. The random model's words are
noise; what is checked is the interface: forced and detected languages, timed segments
inside the audio, long-form audio over 30 s.
"""

from __future__ import annotations

import numpy as np
import pytest

from voice_studio.transcriber import WHISPER_LANGUAGES, TimedSegment, Transcriber

LANGUAGE_CODES = ["en", "zh", "de", "es", "ru", "ko", "fr", "ja", "yue"]  # Whisper's token order starts so


def _tiny_whisper_pipeline(device: str):
    import torch
    from transformers import (GenerationConfig, WhisperConfig, WhisperFeatureExtractor,
                              WhisperForConditionalGeneration, WhisperTokenizer, pipeline)
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {char: index for index, char in enumerate(bytes_to_unicode().values())}  # 256 byte tokens, no merges
    tokenizer = WhisperTokenizer(vocab=vocab, merges=[])
    languages = [f"<|{code}|>" for code in LANGUAGE_CODES]
    specials = ["<|startoftranscript|>", *languages, "<|translate|>", "<|transcribe|>", "<|startoflm|>",
                "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>"]
    tokenizer.add_special_tokens({"additional_special_tokens": specials})
    tokenizer.add_tokens([f"<|{i * 0.02:.2f}|>" for i in range(1501)])  # timestamps follow <|notimestamps|>
    ids = tokenizer.convert_tokens_to_ids
    end, start = ids("<|endoftext|>"), ids("<|startoftranscript|>")
    config = WhisperConfig(
        vocab_size=len(tokenizer), num_mel_bins=80, d_model=16, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        max_source_positions=1500, max_target_positions=32, pad_token_id=end, bos_token_id=end,
        eos_token_id=end, decoder_start_token_id=start,
    )
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=start, eos_token_id=end, pad_token_id=end, bos_token_id=end,
        no_timestamps_token_id=ids("<|notimestamps|>"), prev_sot_token_id=ids("<|startofprev|>"),
        is_multilingual=True, lang_to_id={token: ids(token) for token in languages},
        task_to_id={"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")},
        max_initial_timestamp_index=50, max_length=12, num_beams=1, do_sample=False,
        begin_suppress_tokens=[end], suppress_tokens=[],
    )
    return pipeline("automatic-speech-recognition", model=model, tokenizer=tokenizer,
                    feature_extractor=WhisperFeatureExtractor(feature_size=80), device=device)


@pytest.fixture(scope="module")
def transcriber():
    pytest.importorskip("transformers")
    return Transcriber("tiny-random-whisper", device="cpu", load=lambda model, device: _tiny_whisper_pipeline(device))


def _check_segments(segments: tuple[TimedSegment, ...], duration: float) -> None:
    assert segments and all(isinstance(s.text, str) for s in segments)
    assert all(0.0 <= s.start_s <= s.end_s <= duration for s in segments)
    assert [s.start_s for s in segments] == sorted(s.start_s for s in segments)


def test_forced_language_and_timed_segments(transcriber):
    audio = np.random.default_rng(0).normal(0, 0.1, 3 * 22050).astype(np.float32)
    result = transcriber.transcribe_segments(audio, 22050, "zh")
    assert (result.language, result.whisper_language) == ("zh", "chinese")
    _check_segments(result.segments, 3.0)


def test_detected_language_on_long_form_audio(transcriber):
    audio = np.random.default_rng(1).normal(0, 0.1, 40 * 16000).astype(np.float32)  # > 30 s: long-form decoding
    result = transcriber.transcribe_segments(audio, 16000)
    assert result.whisper_language in {WHISPER_LANGUAGES.get(c, c) for c in LANGUAGE_CODES} | {"german", "spanish",
                                                                                              "russian", "french"}
    assert result.language in (None, *WHISPER_LANGUAGES)
    _check_segments(result.segments, 40.0)
