"""Where the weights come from: the only code in the package that downloads.

``resolve_model_files(version)`` maps a registry version to the files it needs in the
``lj1995/GPT-SoVITS`` Hugging Face repository (two checkpoints, the SV model for the Pro
versions, and only the needed files of the HuBERT and BERT folders) and returns their local
paths. Files come, in order of preference, from explicit paths, from a local folder laid out
like the Hub repository, from the Hugging Face cache, and only then from the network
(``hf_hub_download``: cached, resumable, with progress). Offline (``HF_HUB_OFFLINE=1``)
with a file missing, it fails at once with the list of missing files and how to provide them.
``resolve_g2pw_files()`` does the same for the g2pW model (Chinese polyphones), a zip archive
that is unpacked once, safely, beside the cache.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError
from huggingface_hub.utils import tqdm

from gsv_core.versions import (
    BERT_DIR,
    BERT_FILES,
    DEFAULT_VERSION,
    HUB_REPO_ID,
    HUB_REVISION,
    HUBERT_DIR,
    HUBERT_FILES,
    get_version,
)
from gsv_core.weights_key import weights_key

Progress = Callable[[float, str], None]  # (fraction done in [0, 1], message)
PathLike = str | os.PathLike


class ModelFilesError(FileNotFoundError):
    """Some model files could not be found or fetched; ``missing`` lists them (repo-relative)."""

    def __init__(self, message: str, missing: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.missing = tuple(missing)


@dataclass(frozen=True)
class ModelFiles:
    """Local paths of everything one model version needs."""

    t2s: Path  # s1 (GPT) checkpoint
    sovits: Path  # s2 (SoVITS) checkpoint
    sv: Path | None  # speaker-verification checkpoint (v2Pro family only)
    hubert_dir: Path  # transformers folder of chinese-hubert-base
    bert_dir: Path  # transformers folder of chinese-roberta-wwm-ext-large
    version: str

    def __post_init__(self) -> None:
        info = get_version(self.version)
        if info.uses_sv and self.sv is None:
            raise ValueError(f"version {self.version} needs a speaker-verification checkpoint (sv)")

    def missing(self) -> list[Path]:
        """The paths that do not exist on disk (folder contents included)."""
        paths = [self.t2s, self.sovits, *([self.sv] if self.sv is not None else [])]
        paths += [self.hubert_dir / name for name in HUBERT_FILES]
        paths += [self.bert_dir / name for name in BERT_FILES]
        return [path for path in paths if not path.exists()]


# Which repo-relative file each ModelFiles field stands for; folders are represented by their files.
_FOLDERS = {"hubert_dir": (HUBERT_DIR, HUBERT_FILES), "bert_dir": (BERT_DIR, BERT_FILES)}


def _required(version: str) -> dict[str, tuple[str, ...]]:
    """Field name -> the repo-relative files that field needs."""
    info = get_version(version)
    required = {"t2s": (info.t2s_file,), "sovits": (info.sovits_file,)}
    if info.sv_file:
        required["sv"] = (info.sv_file,)
    for field, (folder, names) in _FOLDERS.items():
        required[field] = tuple(f"{folder}/{name}" for name in names)
    return required


def hub_files(version: str) -> tuple[str, ...]:
    """Every file ``version`` needs, as paths inside the Hub repository."""
    return tuple(name for names in _required(version).values() for name in names)


def _field_path(field: str, file_paths: Sequence[Path]) -> Path:
    return file_paths[0].parent if field in _FOLDERS else file_paths[0]


_MODEL_REMEDY = (
    f"put the files into a folder with the layout of the Hub repository {HUB_REPO_ID} and pass it as local_dir, "
    "or pass explicit paths (t2s=, sovits=, sv=, hubert_dir=, bert_dir=)"
)


def _missing_message(subject: str, missing: Sequence[str], where: str, reason: str, remedy: str = _MODEL_REMEDY) -> str:
    """``subject``: what needs the files ("GPT-SoVITS v2Pro")."""
    listing = "\n".join(f"  - {name}" for name in missing)
    return (
        f"{subject} needs {len(missing)} file(s) not found {where}:\n{listing}\n"
        f"{reason}\nTo provide them: allow downloads (network access, HF_HUB_OFFLINE unset), or {remedy}."
    )


def _from_local_dir(version: str, local_dir: Path, needed: dict[str, tuple[str, ...]]) -> dict[str, Path]:
    missing = [name for names in needed.values() for name in names if not (local_dir / name).is_file()]
    if missing:
        raise ModelFilesError(
            _missing_message(f"GPT-SoVITS {version}", missing, f"in {local_dir}", "The local folder is incomplete."),
            missing,
        )
    return {field: _field_path(field, [local_dir / n for n in names]) for field, names in needed.items()}


def _from_cache(needed: dict[str, tuple[str, ...]], repo_id: str, revision: str, cache_dir) -> dict[str, list]:
    """Field -> cached paths (or None for a file not in the cache); never touches the network."""
    found = {}
    for field, names in needed.items():
        paths = [try_to_load_from_cache(repo_id, name, cache_dir=cache_dir, revision=revision) for name in names]
        found[field] = [Path(p) if isinstance(p, str) else None for p in paths]
    return found


def _byte_progress(progress: Progress, start: float, span: float, name: str) -> type[tqdm]:
    """A tqdm class that forwards one file's byte count to ``progress`` (as a slice of the total)."""

    class _Reporter(tqdm):
        done = 0  # counted here: a disabled bar does not count

        def update(self, n=1):
            self.done += n or 0
            if self.total:
                progress(start + span * min(1.0, self.done / self.total), f"downloading {name}")
            return super().update(n)

    return _Reporter


def _download(subject, needed, repo_id, revision, cache_dir, progress, remedy=_MODEL_REMEDY) -> dict[str, Path]:
    names = [name for field_names in needed.values() for name in field_names]
    paths: dict[str, Path] = {}
    for index, name in enumerate(names):
        if progress:
            progress(index / len(names), f"fetching {name}")
        bar = _byte_progress(progress, index / len(names), 1 / len(names), name) if progress else None
        try:
            paths[name] = Path(
                hf_hub_download(repo_id, name, revision=revision, cache_dir=cache_dir, tqdm_class=bar)
            )
        except (EntryNotFoundError, HfHubHTTPError, OSError) as error:
            missing = names[index:]
            reason = f"Downloading {name} from {repo_id}@{revision} failed: {type(error).__name__}: {error}"
            raise ModelFilesError(_missing_message(subject, missing, "locally", reason, remedy), missing) from error
    return {field: _field_path(field, [paths[n] for n in field_names]) for field, field_names in needed.items()}


def _from_hub(subject, needed, repo_id, revision, cache_dir, offline, progress, remedy=_MODEL_REMEDY) -> dict[str, Path]:
    cached = _from_cache(needed, repo_id, revision, cache_dir)
    if all(path is not None for paths in cached.values() for path in paths):
        return {field: _field_path(field, paths) for field, paths in cached.items()}
    if offline:
        missing = [n for f, names in needed.items() for n, p in zip(names, cached[f], strict=True) if p is None]
        where = f"in the Hugging Face cache ({cache_dir or constants.HF_HUB_CACHE})"
        reason = "Downloads are off (HF_HUB_OFFLINE is set or offline=True was passed)."
        raise ModelFilesError(_missing_message(subject, missing, where, reason, remedy), missing)
    # Fetch everything at the current revision so each folder's files share one snapshot folder;
    # files already cached are linked, not downloaded again.
    return _download(subject, needed, repo_id, revision, cache_dir, progress, remedy)


def _check_explicit(version: str, explicit: dict[str, Path]) -> None:
    missing = []
    for field, path in explicit.items():
        expected = [path / name for name in _FOLDERS[field][1]] if field in _FOLDERS else [path]
        missing += [str(p) for p in expected if not p.is_file()]
    if missing:
        raise ModelFilesError(
            _missing_message(f"GPT-SoVITS {version}", missing, "at the paths given", "Check the paths."), missing
        )


def _find(version, needed, local_dir, cache_dir, repo_id, revision, offline, progress) -> dict[str, Path]:
    """Field -> local path of each needed file: from ``local_dir`` if given, else the cache or the Hub."""
    if local_dir is not None:
        return _from_local_dir(version, Path(local_dir), needed)
    is_offline = constants.HF_HUB_OFFLINE if offline is None else offline
    return _from_hub(f"GPT-SoVITS {version}", needed, repo_id, revision, cache_dir, is_offline, progress)


def resolve_model_files(
    version: str = DEFAULT_VERSION,
    *,
    local_dir: PathLike | None = None,
    cache_dir: PathLike | None = None,
    repo_id: str = HUB_REPO_ID,
    revision: str = HUB_REVISION,
    offline: bool | None = None,
    progress: Progress | None = None,
    t2s: PathLike | None = None,
    sovits: PathLike | None = None,
    sv: PathLike | None = None,
    hubert_dir: PathLike | None = None,
    bert_dir: PathLike | None = None,
) -> ModelFiles:
    """Local paths of every file ``version`` needs, downloading only what is missing.

    Explicit paths (``t2s``, ``sovits``, ``sv``, ``hubert_dir``, ``bert_dir``) win; the rest
    come from ``local_dir`` (a folder laid out like the Hub repository; nothing is downloaded
    then) or from the Hugging Face cache / Hub. ``offline`` defaults to ``HF_HUB_OFFLINE``.
    ``progress(fraction, message)`` is called while downloading.
    Raises ModelFilesError (listing the files) when something cannot be found or fetched.
    """
    given = {"t2s": t2s, "sovits": sovits, "sv": sv, "hubert_dir": hubert_dir, "bert_dir": bert_dir}
    needed = _required(version)
    explicit = {field: Path(path) for field, path in given.items() if path is not None and field in needed}
    _check_explicit(version, explicit)
    needed = {field: names for field, names in needed.items() if field not in explicit}
    resolved = _find(version, needed, local_dir, cache_dir, repo_id, revision, offline, progress) if needed else {}
    if progress:
        progress(1.0, "model files ready")
    paths = {**resolved, **explicit}
    return ModelFiles(**{f.name: paths.get(f.name) for f in fields(ModelFiles) if f.name != "version"}, version=version)


def resolve_sovits_discriminator(
    version: str = DEFAULT_VERSION,
    *,
    local_dir: PathLike | None = None,
    cache_dir: PathLike | None = None,
    repo_id: str = HUB_REPO_ID,
    revision: str = HUB_REVISION,
    offline: bool | None = None,
    progress: Progress | None = None,
) -> Path:
    """Local path of the official pretrained SoVITS discriminator of ``version`` (training only).

    Found like the files of :func:`resolve_model_files`: in ``local_dir`` (the Hub layout),
    else the Hugging Face cache, else downloaded (not offline). Raises ModelFilesError.
    """
    needed = {"discriminator": (get_version(version).sovits_discriminator_file,)}
    return _find(version, needed, local_dir, cache_dir, repo_id, revision, offline, progress)["discriminator"]


# -- g2pW ------------------------------------------------------------------------------------
# The official README points at this archive for g2pW (the Chinese polyphone model). The pinned
# commit is the one a public GPT-SoVITS installer pins for it; it could not be checked from this
# offline workplace. Its tokenizer is the BERT vocabulary's, from the weights repository.
G2PW_REPO_ID = "XXXXRT/GPT-SoVITS-Pretrained"
G2PW_REVISION = "0c47645e02a7bc3688d7b263b0042c81e3cd82cd"
G2PW_ARCHIVE = "G2PWModel.zip"
G2PW_TOKENIZER = f"{BERT_DIR}/tokenizer.json"
G2PW_NETWORKS = ("g2pW.onnx", "g2pw.onnx")
MAX_ARCHIVE_MEMBERS = 256
MAX_ARCHIVE_BYTES = 4 << 30  # unpacked; the released model is about 0.6 GB
_G2PW_REMEDY = f"pass a g2pW model folder or {G2PW_ARCHIVE} (--g2pw PATH), or switch g2pW off (--g2pw off)"


class ArchiveError(ValueError):
    """A downloaded archive that is refused: unreadable, too large, or with unsafe member names."""


@dataclass(frozen=True)
class G2PWFiles:
    """Where the g2pW model folder and the folder of its ``tokenizer.json`` are."""

    model_dir: Path
    tokenizer_dir: Path


def _member_parts(info: zipfile.ZipInfo) -> tuple[str, ...]:
    """The path parts of a member that may be written under the target folder (else ArchiveError)."""
    name = info.filename
    parts = tuple(part for part in name.split("/") if part)
    unsafe = name.startswith("/") or "\\" in name or ":" in name or not parts or any(p in (".", "..") for p in parts)
    if unsafe or stat.S_ISLNK(info.external_attr >> 16):
        raise ArchiveError(f"the archive has an unsafe member {name[:80]!r} (absolute, '..', a drive or a link)")
    return parts


def _extract(archive: Path, target: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = zipped.infolist()
            if len(members) > MAX_ARCHIVE_MEMBERS:
                raise ArchiveError(f"the archive has {len(members)} members, more than {MAX_ARCHIVE_MEMBERS}")
            if sum(info.file_size for info in members) > MAX_ARCHIVE_BYTES:
                raise ArchiveError(f"the archive unpacks to more than {MAX_ARCHIVE_BYTES >> 30} GiB")
            paths = [(info, target.joinpath(*_member_parts(info))) for info in members]
            for info, path in paths:
                if info.is_dir():
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                with zipped.open(info) as source, open(path, "xb") as output:  # reads at most file_size bytes
                    shutil.copyfileobj(source, output, 1 << 20)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, FileExistsError, NotADirectoryError, IsADirectoryError) as error:
        raise ArchiveError(f"{archive.name} is not a usable zip archive: {type(error).__name__}: {error}") from error


def _g2pw_folder(root: Path) -> Path:
    """The folder holding the network: ``root`` itself or one folder below it (the release has G2PWModel/)."""
    for folder in (root, *sorted(p for p in root.iterdir() if p.is_dir())):
        if any((folder / name).is_file() for name in G2PW_NETWORKS):
            return folder
    raise ArchiveError(f"no {' or '.join(G2PW_NETWORKS)} in the g2pW archive")


def unpack_archive(archive: PathLike, root: PathLike) -> Path:
    """Unpack a zip once into ``root/<fingerprint>/`` and return that folder.

    Members with absolute paths, ``..``, drive letters, backslashes or links are refused, as are
    archives of more than 256 members or 4 GiB unpacked. The folder appears whole (unpacked
    beside it, then renamed), so an interrupted unpack is never taken for a finished one.
    """
    archive = Path(archive)
    target = Path(root) / weights_key("g2pW", [archive])
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=target.parent))
    try:
        _extract(archive, staging)
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():  # not another process that finished first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def unpacked_dir(cache_dir: PathLike | None = None) -> Path:
    """Where unpacked archives (and models derived from them) are kept: ``<cache>/gsv_core-unpacked``."""
    return Path(cache_dir or constants.HF_HUB_CACHE) / "gsv_core-unpacked"


def _g2pw_model_dir(model: Path, root: Path) -> Path:
    if model.is_dir():
        return model
    if model.is_file():
        return _g2pw_folder(unpack_archive(model, root))
    raise ModelFilesError(_missing_message("g2pW", [str(model)], "at the path given", "Check the path.",
                                           _G2PW_REMEDY), [str(model)])


def resolve_g2pw_files(
    model: PathLike | None = None,
    bert_dir: PathLike | None = None,
    *,
    cache_dir: PathLike | None = None,
    offline: bool | None = None,
    progress: Progress | None = None,
    repo_id: str = G2PW_REPO_ID,
    revision: str = G2PW_REVISION,
) -> G2PWFiles:
    """The g2pW model folder and its tokenizer's folder, downloading only what is missing.

    ``model``: a model folder, or a ``G2PWModel.zip``; None: the released archive from the Hub
    (cache first), unpacked next to the Hugging Face cache (``<cache>/gsv_core-unpacked/``).
    The tokenizer is the model folder's own ``tokenizer/`` when it has one, else the
    ``tokenizer.json`` of ``bert_dir`` (the chinese-roberta-wwm-ext-large folder, same vocabulary),
    else that file from the weights repository.
    Raises ModelFilesError when a file cannot be found or fetched, ArchiveError for a refused archive.
    """
    is_offline = constants.HF_HUB_OFFLINE if offline is None else offline
    unpack_root = unpacked_dir(cache_dir)
    if model is None:
        needed = {"archive": (G2PW_ARCHIVE,)}
        archive = _from_hub("g2pW", needed, repo_id, revision, cache_dir, is_offline, progress, _G2PW_REMEDY)["archive"]
        model_dir = _g2pw_folder(unpack_archive(archive, unpack_root))
    else:
        model_dir = _g2pw_model_dir(Path(model), unpack_root)
    tokenizer_dir = bert_dir
    if (model_dir / "tokenizer" / "tokenizer.json").is_file():
        tokenizer_dir = model_dir / "tokenizer"
    if tokenizer_dir is None:
        needed = {"tokenizer": (G2PW_TOKENIZER,)}
        found = _from_hub("g2pW", needed, HUB_REPO_ID, HUB_REVISION, cache_dir, is_offline, progress, _G2PW_REMEDY)
        tokenizer_dir = found["tokenizer"].parent
    return G2PWFiles(model_dir=model_dir, tokenizer_dir=Path(tokenizer_dir))
