"""Command line: ``python -m gsv_core synth ...`` speaks a text in the voice of a reference clip.

``python -m gsv_core train-replay REFERENCE_DIR --out OUT.npz`` replays a training reference
(preparation, GPT steps) from its recorded inputs and draws and writes what it reproduced.
``python -m gsv_core prepare-dataset LIST --out DIR ...`` prepares a ``wav|speaker|lang|text`` list
for training as the official scripts do; ``python -m gsv_core train-s1 --prepared DIR --pretrained s1.ckpt --out DIR`` fine-tunes the GPT
stage in the official loop (run it again to continue a run that was stopped); under
``torchrun --nproc_per_node N -m gsv_core train-s1 ...`` it trains on N processes (DDP).

Example::

    python -m gsv_core synth --t2s s1.ckpt --sovits s2.pth --hubert chinese-hubert-base \\
        --bert chinese-roberta-wwm-ext-large --ref-audio ref.wav --ref-text "..." --ref-lang zh \\
        --text "..." --text-lang zh --out out.wav

More clips of the same voice: ``--aux-ref-audio a.wav --aux-ref-audio b.wav`` (the prompt still
comes from ``--ref-audio``; the voice is the mean of every clip's embedding).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gsv_core", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    synth = commands.add_parser("synth", help="synthesize one text with a reference voice")
    models = synth.add_argument_group("model files (official formats)")
    models.add_argument("--t2s", type=Path, required=True, help="s1 GPT checkpoint (.ckpt)")
    models.add_argument("--sovits", type=Path, required=True, help="s2 SoVITS checkpoint (.pth)")
    models.add_argument("--hubert", type=Path, required=True, help="chinese-hubert-base folder")
    models.add_argument("--bert", type=Path, required=True, help="chinese-roberta-wwm-ext-large folder")
    sv = models.add_mutually_exclusive_group()
    sv.add_argument("--sv", type=Path, help="speaker-verification checkpoint (v2Pro, v2ProPlus)")
    sv.add_argument("--sv-embedding", type=Path, action="append",
                    help="precomputed speaker-verification features (.npy, 20480 values); once per reference: "
                         "the main one first, then each --aux-ref-audio in order")
    ref = synth.add_argument_group("reference")
    ref.add_argument("--ref-audio", type=Path, required=True)
    ref.add_argument("--aux-ref-audio", type=Path, action="append", default=[],
                     help="an auxiliary clip of the same voice (repeatable); the voice is the mean over all clips")
    ref.add_argument("--ref-text", default="", help="transcript of the reference; empty for no-transcript mode")
    ref.add_argument("--ref-lang", default="zh")
    target = synth.add_argument_group("target")
    target.add_argument("--text", required=True)
    target.add_argument("--text-lang", default="zh")
    sampling = synth.add_argument_group("sampling")
    sampling.add_argument("--top-k", type=int, default=15)
    sampling.add_argument("--top-p", type=float, default=1.0)
    sampling.add_argument("--temperature", type=float, default=1.0)
    sampling.add_argument("--repetition-penalty", type=float, default=1.35)
    sampling.add_argument("--split", default="cut1", help="text split method cut0..cut5")
    sampling.add_argument("--speed", type=float, default=1.0)
    sampling.add_argument("--seed", type=int, default=None)
    sampling.add_argument("--batch-size", type=int, default=1, help="text segments decoded together by the GPT stage")
    sampling.add_argument("--batch-threshold", type=float, default=0.75)
    sampling.add_argument("--no-split-bucket", action="store_true", help="batch segments in reading order, not by length")
    sampling.add_argument("--fragment-interval", type=float, default=0.3, help="seconds of silence after each segment")
    stream = synth.add_argument_group("streaming")
    stream.add_argument("--stream", choices=("fragments", "chunks"), help="make the audio piece by piece (dumped as yield_<i>_int16)")
    stream.add_argument("--overlap-length", type=int, default=2, help="tokens of a chunk decoded again with the next (chunks)")
    stream.add_argument("--min-chunk-length", type=int, default=16, help="tokens per chunk at least (chunks)")
    stream.add_argument("--fixed-length-chunk", action="store_true", help="cut every --min-chunk-length tokens, not at quiet places")
    sampling.add_argument("--noise", type=Path,
                          help="the decoder's Gaussian draws as the goldens record them: one .npy, or an .npz "
                               "holding decode_noise_<k> for the k-th decoder call")
    synth.add_argument("--official-data", type=Path, help="folder with the official dictionary files")
    synth.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    synth.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (auto: CUDA when present)")
    synth.add_argument("--precision", default="auto",
                       help="auto, fp32, fp16, bf16 or int8 (auto: fp16 on CUDA, else fp32; int8: the fast CPU mode)")
    synth.add_argument("--out", type=Path, required=True, help="output WAV (16-bit)")
    synth.add_argument("--dump", type=Path, help="write intermediate arrays to this .npz")
    _add_training_commands(commands)
    return parser


def _add_training_commands(commands) -> None:
    """The training commands: train-replay, prepare-dataset and train-s1."""
    replay = commands.add_parser("train-replay", help="replay a training reference's stages from its recorded inputs")
    replay.add_argument("reference", type=Path, help="a folder laid out like gsv-reference/training")
    replay.add_argument("--out", type=Path, required=True, help="the reproduced arrays (.npz), under the reference's key names")
    replay.add_argument("--stage", action="append", help="only this stage (repeatable): prepare, s1, ...")
    replay.add_argument("--s1-ckpt", type=Path, help="also write the official s1 export of the last replayed step")
    replay.add_argument("--native-isa", action="store_true",
                        help="use every CPU instruction set (default on x86: AVX2 kernels, as the references were made)")
    prepare = commands.add_parser("prepare-dataset", help="prepare a wav|speaker|lang|text list for training")
    prepare.add_argument("list", type=Path, help="the training list (official format)")
    prepare.add_argument("--wav-dir", type=Path, help="folder of the wavs (default: the paths as written in the list)")
    prepare.add_argument("--out", type=Path, required=True, help="folder for prepared.npz and prepared.json")
    prepare.add_argument("--bert", type=Path, required=True, help="chinese-roberta-wwm-ext-large folder")
    prepare.add_argument("--hubert", type=Path, required=True, help="chinese-hubert-base folder")
    prepare.add_argument("--sovits", type=Path, required=True, help="the s2 .pth whose quantizer gives the semantic tokens")
    prepare.add_argument("--sv", type=Path, help="speaker-verification checkpoint (v2Pro, v2ProPlus)")
    prepare.add_argument("--official-data", type=Path, help="folder with the official dictionary files")
    prepare.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    train_s1 = commands.add_parser("train-s1", help="fine-tune the GPT (s1) stage on a prepared dataset")
    train_s1.add_argument("--prepared", type=Path, required=True, help="folder with prepared.npz and prepared.json")
    train_s1.add_argument("--pretrained", type=Path, required=True, help="s1 .ckpt to start from (its config is the base)")
    train_s1.add_argument("--out", type=Path, required=True, help="folder for the exports, the state and the metrics")
    train_s1.add_argument("--epochs", type=int, help="default: the pretrained file's config")
    train_s1.add_argument("--batch-size", type=int,
                          help="per process; default: from the free memory (the webui's rule, see the README)")
    train_s1.add_argument("--precision", choices=("auto", "32", "16-mixed", "bf16-mixed", "16", "bf16"), default="auto",
                          help="auto: 16-mixed on a GPU fit for half precision, else 32 (16-mixed becomes bf16-mixed on the CPU)")
    train_s1.add_argument("--seed", type=int)
    train_s1.add_argument("--exp-name", help="name of the exported <exp-name>-e<N>.ckpt files")
    train_s1.add_argument("--state-every", type=int, default=4, help="save the resumable state every N batches")
    train_s1.add_argument("--restart", action="store_true", help="start again even if --out holds a saved state")
    train_s1.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    train_s1.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (under torchrun: each process its LOCAL_RANK GPU)")


def _prepare_dataset(args: argparse.Namespace) -> None:
    from .training.prepare import prepare_list_file

    skipped = prepare_list_file(args.list, args.out, args.bert, args.hubert, args.sovits, wav_dir=args.wav_dir,
                                sv_path=args.sv, official_data=args.official_data, device=args.device,
                                progress=lambda done, total: print(f"prepared {done}/{total}", end="\r", flush=True))
    print()
    for item in skipped:
        print(f"left out {item.wav_name}: {item.reason}")
    print(f"wrote {args.out}")


def _train_s1(args: argparse.Namespace) -> None:
    """Under ``torchrun`` every process runs this; its rank comes from the variables torchrun sets."""
    import torch
    from tqdm import tqdm

    from .training.distributed import start_distributed, stop_distributed
    from .training.run_s1 import train_s1

    if args.threads:
        torch.set_num_threads(args.threads)
    group, device = start_distributed(torch.device(args.device), int(os.environ.get("LOCAL_RANK", "0")),
                                      int(os.environ.get("WORLD_SIZE", "1")))
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # as the official s1_train.py sets it (TF32 matmuls)
    overrides = {"epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed, "exp_name": args.exp_name,
                 "precision": None if args.precision == "auto" else args.precision}
    bar = None

    def progress(batch) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=batch.epochs * batch.batches_in_epoch, initial=batch.epoch * batch.batches_in_epoch + batch.batch_idx,
                       unit="batch", dynamic_ncols=True)
        bar.set_postfix_str(f"epoch {batch.epoch + 1} loss {batch.loss:.1f} acc {batch.accuracy:.3f} lr {batch.lr:g}")
        bar.update(1)

    end = None
    try:
        end = train_s1(args.prepared, args.pretrained, args.out, overrides, device=device, state_every=args.state_every,
                       restart=args.restart, on_batch=progress, group=group)
    finally:
        if bar is not None:
            bar.close()
        stop_distributed(group, finished=end is not None)
    if group.is_main:
        print(f"finished: {end.epoch} epochs, {end.steps} optimizer steps; exports in {args.out}")


# the references were made with ATen, MKL and oneDNN limited to AVX2 (gsv-reference/README.md)
_REFERENCE_ISA = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def _train_replay(args: argparse.Namespace) -> None:
    import platform

    if not args.native_isa and platform.machine().lower() in ("x86_64", "amd64"):
        for name, value in _REFERENCE_ISA.items():  # read when torch first runs a kernel
            os.environ.setdefault(name, value)
    import numpy as np

    from .training.atomic import write_atomically
    from .training.replay import replay

    arrays = replay(args.reference, tuple(args.stage) if args.stage else None,
                    on_stage=lambda name, count: print(f"stage {name}: {count} arrays"))
    write_atomically(args.out, lambda handle: np.savez(handle, **arrays))
    print(f"wrote {args.out}: {len(arrays)} arrays")
    if args.s1_ckpt:
        if not any("_param/" in name for name in arrays):
            raise ValueError("--s1-ckpt needs the s1 stage, which did not run")
        from .training.s1_replay import export_replayed

        export_replayed(args.reference, arrays, args.s1_ckpt)
        print(f"wrote {args.s1_ckpt}")


def _synth(args: argparse.Namespace) -> None:
    import numpy as np
    import soundfile as sf
    import torch

    from .audio import to_int16
    from .devices import resolve_placement
    from .engine.fast_cpu import FastCpuMode
    from .engine.pipeline import VoicePipeline
    from .engine.requests import SynthesisOptions

    sv_embeddings = [np.load(path) for path in args.sv_embedding or ()]
    if sv_embeddings and len(sv_embeddings) != 1 + len(args.aux_ref_audio):
        raise ValueError(f"--sv-embedding given {len(sv_embeddings)} times; give it once per reference "
                         f"(1 + {len(args.aux_ref_audio)} auxiliary)")
    if args.threads:
        torch.set_num_threads(args.threads)
    placement = resolve_placement(args.device, args.precision)
    pipeline = VoicePipeline.from_paths(
        args.t2s, args.sovits, args.hubert, args.bert, args.sv, device=placement.device, dtype=placement.dtype,
        official_data=args.official_data, fast_cpu=FastCpuMode() if placement.int8 else None,
    )
    speaker = pipeline.prepare_speaker(
        args.ref_audio, args.ref_text, args.ref_lang, sv_embedding=sv_embeddings[0] if sv_embeddings else None,
        aux_audio=args.aux_ref_audio, aux_sv_embeddings=sv_embeddings[1:] if sv_embeddings else None,
    )
    options = SynthesisOptions(
        top_k=args.top_k, top_p=args.top_p, temperature=args.temperature, repetition_penalty=args.repetition_penalty,
        split_method=args.split, speed=args.speed, seed=args.seed, batch_size=args.batch_size,
        batch_threshold=args.batch_threshold, split_bucket=not args.no_split_bucket,
        fragment_interval=args.fragment_interval, stream=args.stream, overlap_length=args.overlap_length,
        min_chunk_length=args.min_chunk_length, fixed_length_chunk=args.fixed_length_chunk,
    )
    traced: dict[str, np.ndarray] = {}
    pieces: list = []
    result = pipeline.synthesize(args.text, args.text_lang, speaker, options, decode_noise=_noise_draws(args.noise),
                                 inspect=traced.__setitem__, on_audio=pieces.append)
    traced.update({f"yield_{i}_int16": to_int16(piece.audio) for i, piece in enumerate(pieces)})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(args.out, to_int16(result.audio), result.sample_rate, subtype="PCM_16")
    if args.dump:
        np.savez(args.dump, **_dump_arrays(speaker, result, traced))
    print(f"wrote {args.out}: {result.duration_s:.2f} s at {result.sample_rate} Hz, seed {result.seed}")


def _noise_draws(path: Path | None) -> list | None:
    """The injected decoder draws: one .npy (the first call), or decode_noise_<k> of an .npz in call order."""
    import numpy as np

    if path is None:
        return None
    loaded = np.load(path)
    if isinstance(loaded, np.ndarray):
        return [loaded]
    with loaded:
        count = sum(1 for name in loaded.files if name.startswith("decode_noise_"))
        missing = [k for k in range(count) if f"decode_noise_{k}" not in loaded.files]
        if count == 0 or missing:
            raise ValueError(f"{path} must hold decode_noise_0 .. decode_noise_<n-1>")
        return [loaded[f"decode_noise_{k}"] for k in range(count)]


def _dump_arrays(speaker, result, traced: dict) -> dict:
    """Intermediate arrays under the official names; per-call ones (``_<k>``) as the pipeline traced them."""
    from .audio import to_int16

    arrays = {
        "prompt_semantic": speaker.prompt_semantic,
        "prompt_phones": speaker.prompt_phones,
        "prompt_bert": speaker.prompt_bert,
        "refer_spec": speaker.ref_spec,
        "flow_g": speaker.global_embedding,
        "ge_fused": speaker.global_embedding,
        "ge_per_ref": speaker.per_reference_embeddings,
        "out_audio_int16": to_int16(result.audio),
        **traced,
    }
    for i, segment in enumerate(result.segments):
        arrays[f"target_phones_{i}"] = segment.phone_ids
        arrays[f"semantic_tokens_{i}"] = segment.semantic_tokens
    if len(result.segments) == 1:  # the single-call names of the one-segment cases
        arrays["t2s_y_full"] = traced["t2s_y_full_0"]
        arrays["decode_out"] = traced["decode_out_0"]
        for name in ("stream_generated_tokens", "stream_chunk_bounds"):
            if f"{name}_0" in traced:
                arrays[name] = traced[f"{name}_0"]
    return {name: value for name, value in arrays.items() if value is not None}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        {"synth": _synth, "train-replay": _train_replay, "train-s1": _train_s1,
         "prepare-dataset": _prepare_dataset}[args.command](args)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
