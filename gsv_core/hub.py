"""Where the weights come from: the only code in the package that downloads.

``resolve_model_files(version)`` maps a registry version to the files it needs in the
``lj1995/GPT-SoVITS`` Hugging Face repository (two checkpoints, the SV model for the Pro
versions, and only the needed files of the HuBERT and BERT folders) and returns their local
paths. Files come, in order of preference, from explicit paths, from a local folder laid out
like the Hub repository, from the Hugging Face cache, and only then from the network
(``hf_hub_download``: cached, resumable, with progress). Offline (``HF_HUB_OFFLINE=1``)
with a file missing, it fails at once with the list of missing files and how to provide them.
"""

from __future__ import annotations

import os
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


def _missing_message(version: str, missing: Sequence[str], where: str, reason: str) -> str:
    listing = "\n".join(f"  - {name}" for name in missing)
    return (
        f"GPT-SoVITS {version} needs {len(missing)} file(s) not found {where}:\n{listing}\n"
        f"{reason}\nTo provide them: allow downloads (network access, HF_HUB_OFFLINE unset), or put the "
        f"files into a folder with the layout of the Hub repository {HUB_REPO_ID} and pass it as local_dir, "
        "or pass explicit paths (t2s=, sovits=, sv=, hubert_dir=, bert_dir=)."
    )


def _from_local_dir(version: str, local_dir: Path, needed: dict[str, tuple[str, ...]]) -> dict[str, Path]:
    missing = [name for names in needed.values() for name in names if not (local_dir / name).is_file()]
    if missing:
        raise ModelFilesError(
            _missing_message(version, missing, f"in {local_dir}", "The local folder is incomplete."), missing
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


def _download(version, needed, repo_id, revision, cache_dir, progress) -> dict[str, Path]:
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
            raise ModelFilesError(_missing_message(version, missing, "locally", reason), missing) from error
    return {field: _field_path(field, [paths[n] for n in field_names]) for field, field_names in needed.items()}


def _from_hub(version, needed, repo_id, revision, cache_dir, offline, progress) -> dict[str, Path]:
    cached = _from_cache(needed, repo_id, revision, cache_dir)
    if all(path is not None for paths in cached.values() for path in paths):
        return {field: _field_path(field, paths) for field, paths in cached.items()}
    if offline:
        missing = [n for f, names in needed.items() for n, p in zip(names, cached[f], strict=True) if p is None]
        where = f"in the Hugging Face cache ({cache_dir or constants.HF_HUB_CACHE})"
        reason = "Downloads are off (HF_HUB_OFFLINE is set or offline=True was passed)."
        raise ModelFilesError(_missing_message(version, missing, where, reason), missing)
    # Fetch everything at the current revision so each folder's files share one snapshot folder;
    # files already cached are linked, not downloaded again.
    return _download(version, needed, repo_id, revision, cache_dir, progress)


def _check_explicit(version: str, explicit: dict[str, Path]) -> None:
    missing = []
    for field, path in explicit.items():
        expected = [path / name for name in _FOLDERS[field][1]] if field in _FOLDERS else [path]
        missing += [str(p) for p in expected if not p.is_file()]
    if missing:
        raise ModelFilesError(_missing_message(version, missing, "at the paths given", "Check the paths."), missing)


def _find(version, needed, local_dir, cache_dir, repo_id, revision, offline, progress) -> dict[str, Path]:
    """Field -> local path of each needed file: from ``local_dir`` if given, else the cache or the Hub."""
    if local_dir is not None:
        return _from_local_dir(version, Path(local_dir), needed)
    is_offline = constants.HF_HUB_OFFLINE if offline is None else offline
    return _from_hub(version, needed, repo_id, revision, cache_dir, is_offline, progress)


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
