"""The server: REST API and Gradio UI on one FastAPI app, configured by flags or environment.

With no model flags the v2ProPlus weights are resolved from the Hugging Face Hub (cache
first); offline without weights the app still starts, and says what is missing.
"""

from __future__ import annotations

import argparse
import os
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gsv_core.text.frontend import TextFrontend

from .page_files import MAX_UI_BODY_BYTES  # the Gradio routes (file uploads from the page)
from .visitor_keys import MIN_SECRET_CHARS
from .zerogpu import on_zero_gpu

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
    ("--g2pw", "GSV_G2PW", "Chinese polyphones (v2 and later): auto (the released g2pW model, downloaded once), off "
     "(pypinyin's dictionary), or the path of a g2pW model folder or G2PWModel.zip"),
    ("--admin-token", "GSV_ADMIN_TOKEN", "token needed to change the shared library (public Space)"),
    ("--visitor-secret", "GSV_VISITOR_SECRET", "secret (32+ characters) that signs visitor keys; give every replica "
     "the same one (default: made at first start, kept in the data folder)"),
    ("--trust-proxy", "GSV_TRUST_PROXY", "auto or a number: proxies in front of the server that append to "
     "X-Forwarded-For, whose entry the client address is taken from (auto: 1 on a Hugging Face Space, else 0)"),
    ("--version", "GSV_VERSION", "model version to download when no files are given"),
    ("--host", ("GSV_HOST", "GRADIO_SERVER_NAME"), "interface to listen on (0.0.0.0 on a Hugging Face Space)"),
    ("--port", ("GSV_PORT", "GRADIO_SERVER_PORT", "PORT"), "port to listen on"),
    ("--device", "GSV_DEVICE", "auto, cpu, cuda, cuda:N or mps (auto: CUDA when present)"),
    ("--precision", "GSV_PRECISION", "auto, fp32, fp16, bf16 or int8 (auto: fp16 on CUDA, else fp32; int8: the fast CPU mode)"),
    ("--max-chars", "GSV_MAX_CHARS", "characters per request"),
    ("--max-batch", "GSV_MAX_BATCH", "synthesis requests served together (1: one at a time)"),
    ("--max-waiting", "GSV_MAX_WAITING", "synthesis requests waiting; past it, 503 busy"),
    ("--quality-check", "GSV_QUALITY_CHECK", "auto, on or off: the default of the quality check (auto: on when "
     "synthesis runs on CUDA); each request may still choose"),
)
# The hard limits (voice_studio.limits.Limits): (flag, environment variable, Limits field, type, help)
_LIMIT_FLAGS = (
    ("--max-top-k", "GSV_MAX_TOP_K", "top_k", int, "largest top_k option"),
    ("--max-temperature", "GSV_MAX_TEMPERATURE", "temperature", float, "largest temperature option"),
    ("--max-fragment-interval", "GSV_MAX_FRAGMENT_INTERVAL", "max_fragment_interval_s", float,
     "seconds of silence between segments, at most"),
    ("--max-phones", "GSV_MAX_PHONES", "max_phones_per_segment", int, "phones per text segment after normalization"),
    ("--max-segments", "GSV_MAX_SEGMENTS", "max_segments", int, "text segments per request"),
    ("--max-output-s", "GSV_MAX_OUTPUT_S", "max_output_s", float, "expected seconds of audio per request"),
    ("--max-upload-mb", "GSV_MAX_UPLOAD_MB", "max_upload_bytes", lambda v: int(float(v) * 2**20), "MB per uploaded file"),
    ("--max-json-kb", "GSV_MAX_JSON_KB", "max_json_bytes", lambda v: int(float(v) * 2**10), "KB per JSON request body"),
    ("--max-json-depth", "GSV_MAX_JSON_DEPTH", "max_json_depth", int, "nesting depth of a JSON body"),
    ("--body-timeout-s", "GSV_BODY_TIMEOUT_S", "body_timeout_s", float,
     "seconds a request body may take to arrive (plus one per 32 KB received); past it, 408"),
    ("--max-decoded-audio-s", "GSV_MAX_DECODED_AUDIO_S", "max_decoded_audio_s", float,
     "seconds an upload's header may announce before it is refused undecoded"),
    ("--max-transcriptions", "GSV_MAX_TRANSCRIPTIONS", "max_transcriptions", int,
     "uploads transcribed by Whisper at once (references, recordings); past it, 503 busy"),
    ("--max-voices-per-visitor", "GSV_MAX_VOICES_PER_VISITOR", "max_voices_per_visitor", int, "private voices per visitor"),
    ("--max-voices-per-client", "GSV_MAX_VOICES_PER_CLIENT", "max_voices_per_client", int,
     "private voices per client address, over all its visitor keys"),
    ("--max-voices", "GSV_MAX_VOICES", "max_voices", int, "voices in the library"),
    ("--shared-voice-reserve", "GSV_SHARED_VOICE_RESERVE", "shared_voice_reserve", float,
     "share of --max-voices that private voices may never take (0-1)"),
    ("--min-free-disk-mb", "GSV_MIN_FREE_DISK_MB", "min_free_disk_bytes", lambda v: int(float(v) * 2**20),
     "adds are refused (507) below this free disk space"),
    ("--private-voice-days", "GSV_PRIVATE_VOICE_DAYS", "private_voice_ttl_s", lambda v: float(v) * 86400,
     "days a visitor's private voice (and visitor cookie) lives"),
    ("--quality-max-tries", "GSV_QUALITY_MAX_TRIES", "quality_max_tries", int,
     "takes a quality-checked request may make (1-10)"),
    ("--quality-max-cer", "GSV_QUALITY_MAX_CER", "quality_max_cer", float,
     "character error rate above which the quality check tries the next seed (0-1)"),
)
_MODEL_FLAGS = ("t2s", "sovits", "hubert", "bert")
_DEFAULTS = {"speakers_dir": "speakers", "data_dir": "data", "version": "v2ProPlus", "host": "127.0.0.1", "port": "7860",
             "max_chars": "150", "max_batch": "4", "max_waiting": "32", "device": "auto", "precision": "auto",
             "quality_check": "auto", "trust_proxy": "auto", "g2pw": "auto"}
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
    for flag, variable, field_name, _, text in _LIMIT_FLAGS:
        parser.add_argument(flag, default=environ.get(variable), help=f"{text} (env {variable}; default: see README)")
    args = parser.parse_args(argv)
    args.zero_gpu = on_zero_gpu(environ)  # the environment is read here, once
    if args.quality_check not in ("auto", "on", "off"):
        parser.error(f"--quality-check must be auto, on or off, got {args.quality_check!r}")
    if args.visitor_secret is not None and len(args.visitor_secret) < MIN_SECRET_CHARS:
        parser.error(f"--visitor-secret must be at least {MIN_SECRET_CHARS} characters")
    if args.trust_proxy == "auto":  # a Space's own proxy is in front of every request
        args.trust_proxy = "1" if environ.get("SPACE_ID") else "0"
    if not args.trust_proxy.isdigit():
        parser.error(f"--trust-proxy must be auto or a number of proxies, got {args.trust_proxy!r}")
    args.trust_proxy = int(args.trust_proxy)
    if args.g2pw not in ("auto", "off") and not Path(args.g2pw).exists():
        parser.error(f"--g2pw must be auto, off, or a g2pW model folder or G2PWModel.zip; {args.g2pw!r} does not exist")
    given = [name for name in _MODEL_FLAGS if getattr(args, name)]
    if given and len(given) < len(_MODEL_FLAGS):  # never fall back to the Hub silently
        missing = ", ".join(f"--{name}" for name in _MODEL_FLAGS if not getattr(args, name))
        parser.error(f"local model files need all of --t2s, --sovits, --hubert and --bert; missing: {missing}")
    try:
        args.limits = limits_from(args)
    except ValueError as error:
        parser.error(str(error))
    return args


def limits_from(args: argparse.Namespace):
    """The Limits with every limit flag that was given (or its environment variable)."""
    from .limits import Limits

    changes: dict = {}
    for flag, _, field_name, convert, _ in _LIMIT_FLAGS:
        raw = getattr(args, flag[2:].replace("-", "_"))
        if raw is None:
            continue
        try:
            value = convert(raw)
        except ValueError:
            raise ValueError(f"{flag} must be a number, got {raw!r}") from None
        if field_name in ("top_k", "temperature"):  # ranges: only the upper end is configurable
            value = (getattr(Limits(), field_name)[0], value)
        changes[field_name] = value
    return replace(Limits(), **changes)


def frontend_builder(args: argparse.Namespace) -> Callable[..., TextFrontend]:
    """The app's one text frontend, built on first use (by the model loader or the pronunciation
    preview, whichever comes first): the official dictionaries of ``--official-data`` and the g2pW
    reader of ``--g2pw``, which falls back to pypinyin's readings, saying so, when it is missing."""
    lock, built = threading.Lock(), []

    def frontend(progress: Callable[[float, str], None] | None = None) -> TextFrontend:
        from gsv_core.text.frontend import TextFrontend
        from gsv_core.text.zh.g2pw_setup import setup_g2pw

        with lock:
            if not built:
                official = Path(args.official_data) if args.official_data else None
                g2pw = setup_g2pw(args.g2pw, official_data=official, bert_dir=Path(args.bert) if args.bert else None,
                                  progress=progress, int8=args.precision == "int8")  # the fast CPU mode's int8
                built.append(TextFrontend.load(official_data=official, g2pw=g2pw.reader, g2pw_note=g2pw.note))
            return built[0]

    return frontend


def _pipeline_loader(args: argparse.Namespace, frontend: Callable[..., TextFrontend] | None = None):
    frontend = frontend or frontend_builder(args)

    def load(progress):
        from gsv_core.devices import resolve_placement
        from gsv_core.engine.fast_cpu import FastCpuMode
        from gsv_core.hub import resolve_model_files
        from gsv_core.engine.pipeline import VoicePipeline

        placement = resolve_placement(args.device, args.precision)
        fast_cpu = FastCpuMode() if placement.int8 else None
        text = frontend(progress)
        if args.t2s:  # parse_args made sure the other model flags are there too
            pipeline = VoicePipeline.from_paths(Path(args.t2s), Path(args.sovits), Path(args.hubert), Path(args.bert),
                                                Path(args.sv) if args.sv else None, device=placement.device,
                                                dtype=placement.dtype, frontend=text, fast_cpu=fast_cpu)
            if pipeline.version_info.uses_sv and pipeline.speaker_encoder is None:  # else every add would fail
                raise ValueError(f"{Path(args.sovits).name} is a {pipeline.version} model, which needs the "
                                 "speaker-verification checkpoint: start the app with --sv too")
        else:
            files = resolve_model_files(args.version, progress=progress)
            if args.sv and files.sv is None:  # v2 takes no SV features; the model still scores similarity
                files = replace(files, sv=Path(args.sv))
            pipeline = VoicePipeline.from_files(files, device=placement.device, dtype=placement.dtype,
                                                frontend=text, fast_cpu=fast_cpu)
        return pipeline

    return load


def _models_device(args: argparse.Namespace) -> str | None:
    """Where the models will run ("cpu", "cuda:0", ...), or None when the placement is refused
    (the status line says so once loading fails)."""
    from gsv_core.devices import resolve_placement

    try:
        return str(resolve_placement(args.device, args.precision).device)
    except ValueError:
        return None


def quality_check_default(args: argparse.Namespace) -> bool:
    """Whether requests that do not say are quality-checked: ``--quality-check``, or (auto) on CUDA."""
    if args.quality_check != "auto":
        return args.quality_check == "on"
    return (_models_device(args) or "").startswith("cuda")


def transcriber_device(args: argparse.Namespace) -> str:
    """Whisper runs where the models run (reference transcripts, recordings, the quality check); on the
    CPU under ZeroGPU (its GPU exists only inside a GPU call) and when the models' placement is refused."""
    return "cpu" if args.zero_gpu else _models_device(args) or "cpu"


def build_server(args: argparse.Namespace):
    """The FastAPI app with the REST routes and the Gradio UI mounted at /."""
    from fastapi import FastAPI
    from gradio.utils import get_upload_folder

    from .api import add_error_handlers, build_router
    from .http_guard import RequestGuard
    from .page_files import PageFileGuard, mount_page
    from .readable_text import ReadableJsonBodies
    from .service import ServiceConfig, VoiceService
    from .ui import build_app
    from .visitor_keys import SECRET_FILE, VisitorKeys, load_or_create_secret

    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    frontend = frontend_builder(args)  # one for synthesis and the pronunciation preview
    service = VoiceService(
        ServiceConfig(speakers_dir=Path(args.speakers_dir), log_file=data_dir / "synthesis.jsonl", ratings_path=data_dir / "ratings.sqlite",
                      max_chars=int(args.max_chars), admin_token=args.admin_token or None, max_batch=int(args.max_batch),
                      max_waiting=int(args.max_waiting), log_text=args.log_text, limits=args.limits,
                      serve_directly=args.zero_gpu, quality_check_default=quality_check_default(args),
                      transcriber_device=transcriber_device(args)),
        _pipeline_loader(args, frontend),
    )
    if args.zero_gpu:  # at start, outside any GPU call: the models go to cuda here
        service.models.load_now()
    service.start_loading()

    app = FastAPI(title="GPT-SoVITS Voice Studio")

    add_error_handlers(app)
    app.include_router(build_router(service))
    # mounted, and marked launched: else Gradio does not check that the files its events name were uploaded
    app = mount_page(app, build_app(service, frontend), path="/")
    app = PageFileGuard(app, upload_dir=get_upload_folder(), max_bytes=MAX_UI_BODY_BYTES)  # our own check, first
    limits = service.limits
    secret = args.visitor_secret.encode("utf-8") if args.visitor_secret else load_or_create_secret(data_dir / SECRET_FILE)
    guarded = RequestGuard(ReadableJsonBodies(app), max_upload_bytes=limits.max_upload_bytes,
                           max_json_bytes=limits.max_json_bytes, max_ui_body_bytes=MAX_UI_BODY_BYTES,
                           visitor_keys=VisitorKeys(secret, limits.private_voice_ttl_s), proxy_hops=args.trust_proxy,
                           body_timeout_s=limits.body_timeout_s)
    return guarded, service


def main(argv: list[str] | None = None) -> None:
    from .zerogpu import import_spaces_first

    import_spaces_first()  # before torch touches CUDA (ZeroGPU)
    import uvicorn

    from gsv_core.devices import resolve_placement

    args = parse_args(argv)
    try:  # a device that is not there is an error at start, not a background failure
        resolve_placement(args.device, args.precision)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    app, _ = build_server(args)
    uvicorn.run(app, host=args.host, port=int(args.port))
