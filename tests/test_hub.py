"""The weights resolver, against a fake Hugging Face cache and a fake ``hf_hub_download``: never the network."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from huggingface_hub.errors import LocalEntryNotFoundError

import gsv_core.hub as hub
from gsv_core.hub import ModelFiles, ModelFilesError, hub_files, resolve_model_files, resolve_sovits_discriminator
from gsv_core.versions import HUB_REPO_ID, HUB_REVISION, VERSIONS

COMMIT = "0123456789abcdef0123456789abcdef01234567"
FOLDER_FILES = (
    "chinese-hubert-base/config.json",
    "chinese-hubert-base/pytorch_model.bin",
    "chinese-roberta-wwm-ext-large/config.json",
    "chinese-roberta-wwm-ext-large/pytorch_model.bin",
    "chinese-roberta-wwm-ext-large/tokenizer.json",
)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any call that reaches the real downloader fails the test."""

    def forbidden(*args, **kwargs):
        raise AssertionError(f"hf_hub_download must not be called here: {args}")

    monkeypatch.setattr(hub, "hf_hub_download", forbidden)


def _fill(root: Path, names) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"weights of " + name.encode())


def _fake_cache(cache_dir: Path, names) -> Path:
    """The Hugging Face cache layout: refs/<revision> holds the commit, files sit in snapshots/<commit>/."""
    repo = cache_dir / ("models--" + HUB_REPO_ID.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / HUB_REVISION).write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    _fill(snapshot, names)
    return snapshot


def test_each_version_needs_exactly_its_files():
    for name, info in VERSIONS.items():
        expected = [info.t2s_file, info.sovits_file, *([info.sv_file] if info.sv_file else []), *FOLDER_FILES]
        assert sorted(hub_files(name)) == sorted(expected)
    assert "sv/pretrained_eres2netv2w24s4ep4.ckpt" in hub_files("v2Pro")
    assert not any(name.startswith("sv/") for name in hub_files("v2"))


def test_unknown_version():
    with pytest.raises(ValueError, match="unknown model version 'v9'"):
        resolve_model_files("v9", offline=True)


@pytest.mark.parametrize("version", ["v2", "v2Pro", "v2ProPlus"])
def test_complete_cache_resolves_offline(tmp_path, version):
    snapshot = _fake_cache(tmp_path, hub_files(version))
    files = resolve_model_files(version, cache_dir=tmp_path, offline=True)
    info = VERSIONS[version]
    assert files.version == version
    assert files.t2s == snapshot / info.t2s_file
    assert files.sovits == snapshot / info.sovits_file
    assert files.sv == (snapshot / info.sv_file if info.sv_file else None)
    assert files.hubert_dir == snapshot / "chinese-hubert-base"
    assert files.bert_dir == snapshot / "chinese-roberta-wwm-ext-large"
    assert files.missing() == []


def test_complete_cache_needs_no_network_even_online(tmp_path):
    _fake_cache(tmp_path, hub_files("v2ProPlus"))
    files = resolve_model_files("v2ProPlus", cache_dir=tmp_path, offline=False)
    assert files.missing() == []


def test_offline_and_missing_fails_at_once_and_lists_the_files(tmp_path):
    names = hub_files("v2Pro")
    _fake_cache(tmp_path, [n for n in names if not n.endswith("pytorch_model.bin")])
    start = time.monotonic()
    with pytest.raises(ModelFilesError) as caught:
        resolve_model_files("v2Pro", cache_dir=tmp_path, offline=True)
    assert time.monotonic() - start < 1.0
    expected = ("chinese-hubert-base/pytorch_model.bin", "chinese-roberta-wwm-ext-large/pytorch_model.bin")
    assert caught.value.missing == expected
    message = str(caught.value)
    assert all(name in message for name in expected)
    assert "HF_HUB_OFFLINE" in message and "local_dir" in message and "explicit paths" in message
    assert isinstance(caught.value, FileNotFoundError)


def test_offline_with_empty_cache_lists_everything(tmp_path):
    with pytest.raises(ModelFilesError) as caught:
        resolve_model_files("v2", cache_dir=tmp_path / "empty", offline=True)
    assert sorted(caught.value.missing) == sorted(hub_files("v2"))


def test_offline_defaults_to_hf_hub_offline(tmp_path, monkeypatch):
    monkeypatch.setattr(hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelFilesError, match="Downloads are off"):
        resolve_model_files("v2", cache_dir=tmp_path)


class FakeHub:
    """Stands in for ``hf_hub_download``: records requests and writes files into a fake snapshot."""

    def __init__(self, snapshot: Path, fail_on: str | None = None):
        self.snapshot, self.fail_on, self.calls = snapshot, fail_on, []

    def __call__(self, repo_id, filename, *, revision=None, cache_dir=None, tqdm_class=None, **kwargs):
        self.calls.append((repo_id, filename, revision))
        if filename == self.fail_on:
            raise LocalEntryNotFoundError("cannot reach the Hub and the file is not cached")
        if tqdm_class is not None:  # report bytes the way huggingface_hub does
            with tqdm_class(total=100, disable=True) as bar:
                bar.update(40)
                bar.update(60)
        _fill(self.snapshot, [filename])
        return str(self.snapshot / filename)


def test_download_requests_only_the_needed_files(tmp_path, monkeypatch):
    fake = FakeHub(tmp_path / "snap")
    monkeypatch.setattr(hub, "hf_hub_download", fake)
    reports = []
    files = resolve_model_files(
        "v2ProPlus", cache_dir=tmp_path / "cache", offline=False, progress=lambda f, m: reports.append((f, m))
    )
    assert sorted(name for _, name, _ in fake.calls) == sorted(hub_files("v2ProPlus"))
    assert {(repo, rev) for repo, _, rev in fake.calls} == {(HUB_REPO_ID, HUB_REVISION)}
    assert files.sovits == tmp_path / "snap" / "v2Pro" / "s2Gv2ProPlus.pth"
    assert files.bert_dir == tmp_path / "snap" / "chinese-roberta-wwm-ext-large"
    fractions = [f for f, _ in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    first_file = hub_files("v2ProPlus")[0]
    partial = [f for f, m in reports if m == f"downloading {first_file}"]
    assert partial == pytest.approx([0.4 / len(hub_files("v2ProPlus")), 1 / len(hub_files("v2ProPlus"))])


def test_download_failure_names_the_files_still_missing(tmp_path, monkeypatch):
    failing = "v2Pro/s2Gv2Pro.pth"
    monkeypatch.setattr(hub, "hf_hub_download", FakeHub(tmp_path / "snap", fail_on=failing))
    with pytest.raises(ModelFilesError) as caught:
        resolve_model_files("v2Pro", cache_dir=tmp_path / "cache", offline=False)
    names = list(hub_files("v2Pro"))
    assert caught.value.missing == tuple(names[names.index(failing):])
    assert "LocalEntryNotFoundError" in str(caught.value)


def test_local_folder_with_the_hub_layout(tmp_path):
    _fill(tmp_path, hub_files("v2Pro"))
    files = resolve_model_files("v2Pro", local_dir=tmp_path)
    assert files.t2s == tmp_path / "s1v3.ckpt"
    assert files.sv == tmp_path / "sv" / "pretrained_eres2netv2w24s4ep4.ckpt"
    assert files.hubert_dir == tmp_path / "chinese-hubert-base"
    assert files.missing() == []


def test_incomplete_local_folder_is_refused(tmp_path):
    _fill(tmp_path, [n for n in hub_files("v2") if "tokenizer" not in n])
    with pytest.raises(ModelFilesError, match="chinese-roberta-wwm-ext-large/tokenizer.json") as caught:
        resolve_model_files("v2", local_dir=tmp_path)
    assert caught.value.missing == ("chinese-roberta-wwm-ext-large/tokenizer.json",)


def test_explicit_paths_need_no_hub(tmp_path):
    _fill(tmp_path, ["my/gpt.ckpt", "my/sovits.pth", *FOLDER_FILES])
    files = resolve_model_files(
        "v2", offline=True, cache_dir=tmp_path / "empty",
        t2s=tmp_path / "my/gpt.ckpt", sovits=tmp_path / "my/sovits.pth",
        hubert_dir=tmp_path / "chinese-hubert-base", bert_dir=tmp_path / "chinese-roberta-wwm-ext-large",
    )
    assert files == ModelFiles(
        t2s=tmp_path / "my/gpt.ckpt", sovits=tmp_path / "my/sovits.pth", sv=None,
        hubert_dir=tmp_path / "chinese-hubert-base", bert_dir=tmp_path / "chinese-roberta-wwm-ext-large",
        version="v2",
    )


def test_explicit_checkpoints_with_the_rest_from_the_cache(tmp_path, monkeypatch):
    fake = FakeHub(tmp_path / "snap")
    monkeypatch.setattr(hub, "hf_hub_download", fake)
    _fill(tmp_path, ["mine/s1.ckpt", "mine/s2.pth"])
    files = resolve_model_files(
        "v2ProPlus", cache_dir=tmp_path / "cache", offline=False,
        t2s=tmp_path / "mine/s1.ckpt", sovits=tmp_path / "mine/s2.pth",
    )
    requested = {name for _, name, _ in fake.calls}
    assert requested == {"sv/pretrained_eres2netv2w24s4ep4.ckpt", *FOLDER_FILES}
    assert files.t2s == tmp_path / "mine/s1.ckpt"
    assert files.sv == tmp_path / "snap" / "sv" / "pretrained_eres2netv2w24s4ep4.ckpt"


def test_missing_explicit_path_is_reported(tmp_path):
    with pytest.raises(ModelFilesError, match="gone.ckpt"):
        resolve_model_files("v2", offline=True, t2s=tmp_path / "gone.ckpt")


def test_model_files_needs_sv_for_pro_versions(tmp_path):
    with pytest.raises(ValueError, match="speaker-verification"):
        ModelFiles(t2s=tmp_path, sovits=tmp_path, sv=None, hubert_dir=tmp_path, bert_dir=tmp_path, version="v2Pro")
    files = ModelFiles(
        t2s=tmp_path / "a", sovits=tmp_path / "b", sv=None, hubert_dir=tmp_path, bert_dir=tmp_path, version="v2"
    )
    assert tmp_path / "a" in files.missing() and tmp_path / "config.json" in files.missing()


@pytest.mark.parametrize(
    "version, name",
    [("v2", "gsv-v2final-pretrained/s2D2333k.pth"), ("v2Pro", "v2Pro/s2Dv2Pro.pth"), ("v2ProPlus", "v2Pro/s2Dv2ProPlus.pth")],
)
def test_pretrained_discriminator_comes_from_the_hub_layout(tmp_path, version, name):
    """Training's discriminator is the official s2D file beside each version's s2G (never needed for inference)."""
    assert name not in hub_files(version)
    with pytest.raises(ModelFilesError, match=name):
        resolve_sovits_discriminator(version, cache_dir=tmp_path / "empty", offline=True)
    snapshot = _fake_cache(tmp_path / "cache", [name])
    assert resolve_sovits_discriminator(version, cache_dir=tmp_path / "cache", offline=True) == snapshot / name
    _fill(tmp_path / "local", [name])
    assert resolve_sovits_discriminator(version, local_dir=tmp_path / "local") == tmp_path / "local" / name
