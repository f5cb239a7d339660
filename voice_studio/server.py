"""The server: REST API and Gradio UI on one FastAPI app, configured by flags or environment.

With no model flags the v2ProPlus weights are resolved from the Hugging Face Hub (cache
first); offline without weights the app still starts, and says what is missing.
"""

from __future__ import annotations

import argparse
import os
from functools import cache
from pathlib import Path

# (flag, environment variables (the first one set wins), help)
_FLAGS = (
    ("--t2s", "GSV_T2S", "s1 GPT checkpoint (.ckpt)"),
    ("--sovits", "GSV_SOVITS", "s2 SoVITS checkpoint (.pth)"),
    ("--hubert", "GSV_HUBERT", "chinese-hubert-base folder"),
    ("--bert", "GSV_BERT", "chinese-roberta-wwm-ext-large folder"),
    ("--sv", "GSV_SV", "speaker-verification checkpoint (v2Pro, v2ProPlus)"),
    ("--speakers-dir", "GSV_SPEAKERS_DIR", "speaker library folder"),
    ("--data-dir", "GSV_DATA_DIR", "folder for logs"),
    ("--official-data", "GSV_OFFICIAL_DATA", "folder with the official dictionary files"),
    ("--admin-token", "GSV_ADMIN_TOKEN", "token needed to change the shared library (public Space)"),
    ("--version", "GSV_VERSION", "model version to download when no files are given"),
    ("--host", ("GSV_HOST", "GRADIO_SERVER_NAME"), "interface to listen on (0.0.0.0 on a Hugging Face Space)"),
    ("--port", ("GSV_PORT", "GRADIO_SERVER_PORT", "PORT"), "port to listen on"),
    ("--device", "GSV_DEVICE", "auto, cpu, cuda, cuda:N or mps (auto: CUDA when present)"),
    ("--precision", "GSV_PRECISION", "auto, fp32, fp16, bf16 or int8 (auto: fp16 on CUDA, else fp32; int8: the fast CPU mode)"),
    ("--max-chars", "GSV_MAX_CHARS", "characters per request"),
    ("--max-batch", "GSV_MAX_BATCH", "synthesis requests served together (1: one at a time)"),
)
_DEFAULTS = {"speakers_dir": "speakers", "data_dir": "data", "version": "v2ProPlus", "host": "127.0.0.1", "port": "7860",
             "max_chars": "150", "max_batch": "4", "device": "auto", "precision": "auto"}
_TRUE = {"1", "true", "yes", "on"}


def parse_args(argv: list[str] | None = None, environ: dict | None = None) -> argparse.Namespace:
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(prog="python app.py", description="GPT-SoVITS Voice Studio")
    defaults = dict(_DEFAULTS, host="0.0.0.0") if environ.get("SPACE_ID") else _DEFAULTS  # a Space proxies to 0.0.0.0
    for flag, variables, text in _FLAGS:
        key = flag[2:].replace("-", "_")
        variables = (variables,) if isinstance(variables, str) else variables
        default = next((environ[v] for v in variables if environ.get(v)), defaults.get(key))
        parser.add_argument(flag, default=default, help=f"{text} (env {' or '.join(variables)})")
    parser.add_argument("--log-text", action="store_true", default=environ.get("GSV_LOG_TEXT", "").lower() in _TRUE,
                        help="also log the synthesized text itself (env GSV_LOG_TEXT=1); off by default, for visitors' privacy")
    return parser.parse_args(argv)


def _pipeline_loader(args: argparse.Namespace):
    def load(progress):
        from gsv_core.devices import resolve_placement
        from gsv_core.fast_cpu import quantize_for_cpu
        from gsv_core.hub import resolve_model_files
        from gsv_core.pipeline import VoicePipeline

        official = Path(args.official_data) if args.official_data else None
        placement = resolve_placement(args.device, args.precision)
        if args.t2s and args.sovits and args.hubert and args.bert:
            pipeline = VoicePipeline.from_paths(Path(args.t2s), Path(args.sovits), Path(args.hubert), Path(args.bert),
                                                Path(args.sv) if args.sv else None, device=placement.device,
                                                dtype=placement.dtype, official_data=official)
        else:
            files = resolve_model_files(args.version, progress=progress)
            pipeline = VoicePipeline.from_files(files, device=placement.device, dtype=placement.dtype,
                                                official_data=official)
        return quantize_for_cpu(pipeline) if placement.int8 else pipeline

    return load


def build_server(args: argparse.Namespace):
    """The FastAPI app with the REST routes and the Gradio UI mounted at /."""
    import gradio as gr
    from fastapi import FastAPI

    from gsv_core.text.frontend import TextFrontend

    from .api import add_error_handlers, build_router
    from .service import ServiceConfig, VoiceService
    from .ui import build_app

    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    service = VoiceService(
        ServiceConfig(speakers_dir=Path(args.speakers_dir), log_file=data_dir / "synthesis.jsonl", ratings_path=data_dir / "ratings.sqlite",
                      max_chars=int(args.max_chars), admin_token=args.admin_token or None, max_batch=int(args.max_batch),
                      log_text=args.log_text),
        _pipeline_loader(args),
    )
    service.start_loading()

    @cache
    def frontend() -> TextFrontend:
        return TextFrontend.load(official_data=Path(args.official_data) if args.official_data else None)

    app = FastAPI(title="GPT-SoVITS Voice Studio")

    add_error_handlers(app)
    app.include_router(build_router(service))
    app = gr.mount_gradio_app(app, build_app(service, frontend), path="/")
    return app, service


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    from gsv_core.devices import resolve_placement

    args = parse_args(argv)
    try:  # a device that is not there is an error at start, not a background failure
        resolve_placement(args.device, args.precision)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    app, _ = build_server(args)
    uvicorn.run(app, host=args.host, port=int(args.port))
