"""g2pW in the Chinese frontend: the official frontend's results with g2pW on, row by row.

``../shared/gsv-reference/g2pw/`` holds a tiny random g2pW model in the official folder layout
and what the unchanged official frontend gives with it (``frontend_public_g2pw.jsonl``: phones,
plus each converter call's inputs, per-character outputs, model queries, network runs and the
polyphone dictionary's overrides). Every row is checked end to end, through the CLI, and call by
call. The tests skip, saying so, when the reference is absent.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from conftest import REFERENCE_DIR

G2PW_DIR = REFERENCE_DIR / "g2pw"
GOLDEN = G2PW_DIR / "frontend_public_g2pw.jsonl"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
FIELDS = ("norm_text", "phones", "phone_ids", "word2ph")
QUERY_KEYS = ("seg", "pos", "window_pos", "window", "char", "input_char", "label", "pinyin")


@cache
def _rows() -> tuple[dict, ...]:
    if not GOLDEN.exists():
        return ()
    return tuple(json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines() if line.strip())


def _params():
    return [pytest.param(row, id=row["id"]) for row in _rows()] or [pytest.param(None, id="no-goldens")]


@pytest.fixture(scope="session")
def model_dir(reference_dir) -> Path:
    if not (G2PW_DIR / "G2PWModel-tiny").is_dir():
        pytest.skip(f"the g2pW reference is not at {G2PW_DIR}; skipping the g2pW parity tests")
    return G2PW_DIR / "G2PWModel-tiny"


@pytest.fixture(scope="session")
def g2pw(model_dir, official_data_dir):
    from gsv_core.text.zh.g2pw import G2PW

    return G2PW.load(model_dir, official_data=official_data_dir)


@pytest.fixture(scope="session")
def frontend(g2pw, official_data_dir):
    from gsv_core.text.frontend import TextFrontend

    return TextFrontend.load(official_data=official_data_dir, g2pw=g2pw)


@pytest.fixture(scope="session")
def plain_frontend(official_data_dir):
    from gsv_core.text.frontend import TextFrontend

    return TextFrontend.load(official_data=official_data_dir)


# -- parity ----------------------------------------------------------------------------------

@pytest.mark.parametrize("row", _params())
def test_frontend_row_with_g2pw(row, frontend):
    assert row["error"] is None and row["version"] == "v2"
    sequence = frontend.phonemize(row["text"], row["language"], row["version"])
    assert sequence.as_dict() == {key: row[key] for key in FIELDS}
    assert [(p.language, p.norm_text, list(p.phones)) for p in sequence.parts] == [
        (p["lang"], p["norm_text"], p["phones"]) for p in row["parts"]]


@pytest.mark.parametrize("row", _params())
def test_converter_calls_as_recorded(row, g2pw):
    """Each call: per-character readings, every query's window, position, label and reading, the network runs."""
    for part in row["g2pw"]:
        for call in part:
            reading = g2pw.read(call["inputs"])
            assert [list(chars) for chars in reading.pinyins] == call["outputs"]
            got = [{"seg": q.segment, "pos": q.position, "window_pos": q.window_position, "window": q.window,
                    "char": q.char, "input_char": q.input_char, "label": q.label, "pinyin": q.pinyin}
                   for q in reading.queries]
            assert got == [{key: q[key] for key in QUERY_KEYS} for q in call["queries"]]
            for query, recorded in zip(reading.queries, call["queries"]):
                assert query.prob == pytest.approx(recorded["prob"], abs=1e-5)
                assert query.margin == pytest.approx(recorded["margin"], abs=1e-5)
            assert [list(run) for run in reading.runs] == call["onnx_batches"]


def test_the_dictionary_overrides_as_recorded(g2pw):
    from gsv_core.text.zh.g2pw_polyphones import correct_with_dictionary

    overrides = [o for row in _rows() for part in row["g2pw"] for call in part for o in call["overrides"]]
    assert len(overrides) == 100
    for override in overrides:
        assert correct_with_dictionary(override["word"], override["converter"], g2pw.polyphones) == override["final"]


def test_the_fix_file_wins(official_data_dir, g2pw):
    import ast

    def parse(name):
        lines = (official_data_dir / name).read_text(encoding="utf-8").splitlines()
        return {k.strip(): ast.literal_eval(v.strip()) for k, v in (line.split(":") for line in lines if line.strip())}

    base, fix = parse("polyphonic.rep"), parse("polyphonic-fix.rep")
    assert len(g2pw.polyphones) == len(base | fix) == 45047
    both = [word for word in base if word in fix and base[word] != fix[word]]
    assert both, "the reference files should disagree somewhere"
    assert all(list(g2pw.polyphones[word]) == fix[word] for word in both)


def test_g2pw_changes_the_rows_the_reference_says(plain_frontend, model_dir):
    """g2pW off, our frontend gives the old readings: 73 of the 142 rows then differ from the g2pW goldens."""
    differing = sum(
        plain_frontend.phonemize(row["text"], row["language"], row["version"]).phones != tuple(row["phones"])
        for row in _rows()
    )
    assert differing == 73


def test_v1_never_asks_g2pw(frontend, plain_frontend, monkeypatch):
    calls = []
    monkeypatch.setattr(type(frontend.analyzers.g2pw), "read", lambda self, segments: calls.append(segments))
    text = "银行行长重新调整了长期的计划。"
    assert frontend.phonemize(text, "zh", "v1") == plain_frontend.phonemize(text, "zh", "v1")
    assert calls == []


def test_the_cli_reproduces_every_row(model_dir, official_data_dir, tmp_path):
    rows = [{key: row[key] for key in ("id", "text", "language", "version")} for row in _rows()]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "gsv_core.text", "--jsonl", str(source), "--official-data", str(official_data_dir),
         "--g2pw", str(model_dir)], cwd=PROJECT_ROOT, capture_output=True, text=True, encoding="utf-8", timeout=600)
    assert result.returncode == 0, result.stderr
    outputs = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(outputs) == len(_rows()) == 142
    for out, expected in zip(outputs, _rows()):
        assert {key: out.get(key) for key in ("id", *FIELDS)} == {key: expected[key] for key in ("id", *FIELDS)}


def test_reading_with_g2pw_never_imports_torch(model_dir, official_data_dir):
    """The tokenizer is read with ``tokenizers`` itself: transformers' tokenizer classes import torch."""
    script = (
        "import sys\n"
        "from gsv_core.text.frontend import TextFrontend\n"
        "from gsv_core.text.zh.g2pw import G2PW\n"
        f"g2pw = G2PW.load({str(model_dir)!r}, official_data={str(official_data_dir)!r})\n"
        f"frontend = TextFrontend.load(official_data={str(official_data_dir)!r}, g2pw=g2pw)\n"
        "frontend.prepare('银行行长重新调整了长期的计划。', 'zh', 'v2')\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_the_cli_refuses_a_folder_that_is_no_model(tmp_path):
    """A folder without the model's lists stops the CLI with the file's name, before any row."""
    result = subprocess.run([sys.executable, "-m", "gsv_core.text", "你好", "--g2pw", str(tmp_path)],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "--g2pw" in result.stderr and "POLYPHONIC_CHARS.txt" in result.stderr


# -- the model folder ------------------------------------------------------------------------

def _copy(model_dir: Path, target: Path) -> Path:
    shutil.copytree(model_dir, target)
    for path in target.rglob("*"):
        path.chmod(0o644 if path.is_file() else 0o755)
    return target


def test_labels_and_characters_come_from_the_folder(g2pw, model_dir):
    rows = [line.split("\t") for line in (model_dir / "POLYPHONIC_CHARS.txt").read_text("utf-8").strip().split("\n")]
    assert g2pw.model.labels == tuple(sorted({reading for _, reading in rows}))
    assert g2pw.model.chars == tuple(sorted({char for char, _ in rows}))
    assert len(g2pw.model.labels) == 650 and len(g2pw.model.chars) == 623


def test_a_changed_monophonic_list_changes_the_reading(model_dir, tmp_path):
    from gsv_core.text.zh.g2pw import G2PW

    copy = _copy(model_dir, tmp_path / "model")
    monophonic = copy / "MONOPHONIC_CHARS.txt"
    lines = monophonic.read_text("utf-8").split("\n")
    assert "三\tㄙㄢ1" in lines
    monophonic.write_text("\n".join("三\tㄙㄨ4" if line == "三\tㄙㄢ1" else line for line in lines), "utf-8")
    before = G2PW.load(model_dir).read(["三点."]).pinyins
    after = G2PW.load(copy).read(["三点."]).pinyins
    assert before[0][0] == "san1" and after[0][0] == "su4" and before[0][1:] == after[0][1:]


def test_config_is_read_never_run(model_dir, tmp_path):
    from gsv_core.text.zh.g2pw import G2PW

    copy = _copy(model_dir, tmp_path / "model")
    marker = tmp_path / "ran"
    (copy / "config.py").write_text(f"open({str(marker)!r}, 'w').write('x')\nuse_mask = True\nuse_char_phoneme = False\n")
    assert G2PW.load(copy).read(["重新开始."]).queries
    assert not marker.exists()


def test_a_window_longer_than_bert_is_cut_around_the_query(g2pw):
    model = g2pw.model
    query_char = sorted(model.asked)[0]
    window = "天" * 400 + query_char + "地" * 400
    encoded = model.encode(window, 400)
    assert len(encoded.input_ids) == 512 and encoded.position == 256
    assert encoded.input_ids[encoded.position] == model.encode(query_char, 0).input_ids[1]
    assert model.encode(window, 5).position == 6  # near the start: the cut cannot centre it


def test_where_upstream_would_crash_pypinyin_reads(model_dir, monkeypatch):
    """A label or listed reading without pinyin keeps pypinyin's reading (upstream hands None on and
    fails); an s2tw result of another length is converted character by character (upstream asserts)."""
    from pypinyin import Style, pinyin

    from gsv_core.text.zh.g2pw import G2PW

    reader = G2PW.load(model_dir)
    monkeypatch.setattr(reader.model, "_pinyin", {})
    text = "银行行长重新调整了计划."
    expected = tuple(item[0] for item in pinyin(text, style=Style.TONE3, neutral_tone_with_five=True, errors=list))
    reading = reader.read([text])
    assert reading.queries and reading.pinyins == (expected,)

    class Lengthening:
        def convert(self, text: str) -> str:
            return {"说": "說"}.get(text, text) if len(text) == 1 else text + "x"

    reader.__dict__["_s2tw"] = Lengthening()
    assert reader._traditional("说话") == "說话"


# -- missing model, setup, status ------------------------------------------------------------

def test_a_missing_model_falls_back_to_pypinyin_and_says_so_once(tmp_path, plain_frontend, official_data_dir, caplog):
    from gsv_core.text.frontend import TextFrontend
    from gsv_core.text.zh.g2pw_setup import NOTE_MISSING, setup_g2pw

    with caplog.at_level(logging.WARNING, logger="gsv_core.text.g2pw"):
        setup = setup_g2pw("auto", official_data=official_data_dir, cache_dir=tmp_path / "empty", offline=True)
    assert setup.reader is None and setup.note == NOTE_MISSING
    assert len(caplog.records) == 1 and "G2PWModel.zip" in caplog.records[0].getMessage()
    fallback = TextFrontend.load(official_data=official_data_dir, g2pw=setup.reader, g2pw_note=setup.note)
    text = "银行行长重新调整了长期的计划。"
    assert fallback.phonemize(text, "zh", "v2") == plain_frontend.phonemize(text, "zh", "v2")
    assert fallback.reading_files == ()
    broken = tmp_path / "broken"
    broken.mkdir()
    assert setup_g2pw(str(broken), offline=True).note == NOTE_MISSING
    assert setup_g2pw("off") == type(setup)(None, None)


def test_a_model_folder_path_sets_up_g2pw(model_dir, official_data_dir):
    from gsv_core.text.zh.g2pw_setup import NOTE_NO_DICTIONARY, setup_g2pw

    on = setup_g2pw(str(model_dir), official_data=official_data_dir, offline=True)
    assert on.reader is not None and on.note is None and len(on.reader.polyphones) == 45047
    assert setup_g2pw(str(model_dir), offline=True).note == NOTE_NO_DICTIONARY


def test_the_status_line_says_when_g2pw_is_missing():
    from types import SimpleNamespace

    from voice_studio.model_host import ModelHost

    def host(note):
        frontend = SimpleNamespace(g2pw_note=note)
        loaded = ModelHost(lambda progress: SimpleNamespace(version="v2ProPlus", frontend=frontend))
        loaded.load_now()
        return loaded.status

    assert host(None) == "ready: GPT-SoVITS v2ProPlus"
    assert host("Chinese polyphones: the g2pW model is missing") == (
        "ready: GPT-SoVITS v2ProPlus · Chinese polyphones: the g2pW model is missing")


def test_the_app_flag(model_dir, official_data_dir, tmp_path):
    from voice_studio.server import frontend_builder, parse_args

    assert parse_args([], environ={}).g2pw == "auto"
    assert parse_args([], environ={"GSV_G2PW": "off"}).g2pw == "off"
    with pytest.raises(SystemExit):
        parse_args(["--g2pw", str(tmp_path / "absent")], environ={})
    args = parse_args(["--g2pw", str(model_dir), "--official-data", str(official_data_dir)], environ={})
    build = frontend_builder(args)
    assert build() is build() and build().analyzers.g2pw is not None and build().g2pw_note is None
    assert frontend_builder(parse_args(["--g2pw", "off"], environ={}))().analyzers.g2pw is None


def test_the_preview_shows_the_g2pw_readings(frontend):
    from voice_studio.ui.pronunciation_tab import polyphone_readings, preview

    row = next(r for r in _rows() if r["id"].startswith("g2pw-pub") and r["g2pw"][0][0]["queries"])
    norm_text, phones, parts, details = preview(frontend, row["text"], row["language"], row["version"])
    assert details == {key: row[key] for key in FIELDS}
    queries = [q for part in row["g2pw"] for call in part for q in call["queries"]]
    shown = polyphone_readings(frontend, parts, row["version"])
    assert shown.split(" · ") == [f"{q['input_char']} {q['pinyin']} {q['prob']:.2f}" for q in queries]
    assert polyphone_readings(frontend, parts, "v1") == ""



def test_the_live_page_previews_with_g2pw(reference_dir, model_dir, official_data_dir, tmp_path):
    """The app started with --g2pw: the Pronunciation tab shows g2pW's phones and its readings line."""
    from browser_page import open_page
    from live_server import start_live_server
    from playwright.sync_api import expect

    row = next(r for r in _rows() if r["id"].startswith("g2pw-pub") and r["language"] == "zh")  # the page's default mode
    queries = [q for part in row["g2pw"] for call in part for q in call["queries"]]
    server = start_live_server(reference_dir, tmp_path, "--g2pw", str(model_dir), "--official-data", str(official_data_dir))
    try:
        assert server.service.status == "ready: GPT-SoVITS v2"  # on, with the dictionary: nothing to add
        with open_page(server.base + "/") as page:
            page.get_by_role("tab", name="Pronunciation").click()
            page.get_by_label("Text", exact=True).last.fill(row["text"])
            page.get_by_role("button", name="Show pronunciation").click()
            expect(page.get_by_label("Phones", exact=True)).to_have_value(" ".join(row["phones"]), timeout=60_000)
            readings = page.get_by_label("g2pW's readings", exact=False)
            expect(readings).to_have_value(" · ".join(f"{q['input_char']} {q['pinyin']} {q['prob']:.2f}" for q in queries))
            shots = PROJECT_ROOT / "tests" / "artifacts"
            shots.mkdir(exist_ok=True)
            page.screenshot(path=str(shots / "g2pw-preview.png"), full_page=True)
    finally:
        server.stop()

# -- the Hub ---------------------------------------------------------------------------------

COMMIT = "0123456789abcdef0123456789abcdef01234567"
FAKE_MODEL = {"G2PWModel/g2pW.onnx": b"network", "G2PWModel/POLYPHONIC_CHARS.txt": "行\tㄏㄤ2\n".encode(),
              "G2PWModel/version": b"1.1"}


@pytest.fixture
def no_network(monkeypatch):
    import gsv_core.hub as hub

    def forbidden(*args, **kwargs):
        raise AssertionError(f"hf_hub_download must not be called here: {args}")

    monkeypatch.setattr(hub, "hf_hub_download", forbidden)
    return hub


def _zip(path: Path, members: dict[str, bytes], links: tuple[str, ...] = ()) -> Path:
    import stat
    import zipfile

    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return path


def _cached(cache: Path, repo: str, revision: str, name: str) -> Path:
    """Where the Hugging Face cache layout keeps ``name`` of ``repo`` at ``revision`` (refs/<revision> -> COMMIT)."""
    folder = cache / ("models--" + repo.replace("/", "--"))
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / revision).write_text(COMMIT)
    path = folder / "snapshots" / COMMIT / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _fake_cache(cache: Path, model: dict[str, bytes], tokenizer: bytes = b"{}") -> Path:
    from gsv_core.hub import G2PW_ARCHIVE, G2PW_REPO_ID, G2PW_REVISION, G2PW_TOKENIZER, HUB_REPO_ID, HUB_REVISION

    _zip(_cached(cache, G2PW_REPO_ID, G2PW_REVISION, G2PW_ARCHIVE), model)
    path = _cached(cache, HUB_REPO_ID, HUB_REVISION, G2PW_TOKENIZER)
    path.write_bytes(tokenizer)
    return path.parent


def test_the_released_archive_resolves_from_the_cache_and_unpacks_once(tmp_path, no_network):
    tokenizer_dir = _fake_cache(tmp_path, FAKE_MODEL)
    files = no_network.resolve_g2pw_files(cache_dir=tmp_path, offline=True)
    assert files.model_dir.parent.parent == tmp_path / "gsv_core-unpacked" and files.model_dir.name == "G2PWModel"
    assert (files.model_dir / "g2pW.onnx").read_bytes() == b"network" and files.tokenizer_dir == tokenizer_dir
    (files.model_dir / "version").write_bytes(b"kept")  # a second resolve must not unpack again
    assert no_network.resolve_g2pw_files(cache_dir=tmp_path, offline=True) == files
    assert (files.model_dir / "version").read_bytes() == b"kept"
    assert [p.name for p in (tmp_path / "gsv_core-unpacked").iterdir()] == [files.model_dir.parent.name]


def test_downloads_ask_for_the_pinned_archive_and_tokenizer_only(tmp_path, monkeypatch):
    import gsv_core.hub as hub

    calls = []

    def fake_download(repo_id, filename, *, revision=None, cache_dir=None, tqdm_class=None, **kwargs):
        calls.append((repo_id, filename, revision))
        path = tmp_path / "snap" / repo_id / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        _zip(path, FAKE_MODEL) if filename == hub.G2PW_ARCHIVE else path.write_bytes(b"{}")
        return str(path)

    monkeypatch.setattr(hub, "hf_hub_download", fake_download)
    files = hub.resolve_g2pw_files(cache_dir=tmp_path / "cache", offline=False)
    assert calls == [(hub.G2PW_REPO_ID, "G2PWModel.zip", hub.G2PW_REVISION),
                     (hub.HUB_REPO_ID, "chinese-roberta-wwm-ext-large/tokenizer.json", hub.HUB_REVISION)]
    assert (files.model_dir / "g2pW.onnx").is_file()
    bert = tmp_path / "bert"
    bert.mkdir()
    assert hub.resolve_g2pw_files(files.model_dir, bert, cache_dir=tmp_path / "cache").tokenizer_dir == bert
    assert len(calls) == 2  # a local model folder and BERT folder need nothing from the Hub


def test_offline_without_the_archive_fails_at_once(tmp_path, no_network):
    with pytest.raises(no_network.ModelFilesError) as caught:
        no_network.resolve_g2pw_files(cache_dir=tmp_path, offline=True)
    assert caught.value.missing == ("G2PWModel.zip",) and "--g2pw off" in str(caught.value)


@pytest.mark.parametrize("members, links", [
    ({"../escaped.txt": b"x", "G2PWModel/g2pW.onnx": b"n"}, ()),
    ({"/absolute.txt": b"x"}, ()),
    ({"G2PWModel\\..\\..\\escaped.txt": b"x"}, ()),
    ({"C:/escaped.txt": b"x"}, ()),
    ({"G2PWModel/g2pW.onnx": b"n"}, ("G2PWModel/link",)),
], ids=["dot-dot", "absolute", "backslash", "drive", "symlink"])
def test_an_archive_with_unsafe_members_is_refused(members, links, tmp_path):
    from gsv_core.hub import ArchiveError, unpack_archive

    archive = _zip(tmp_path / "in" / "G2PWModel.zip", members, links)
    with pytest.raises(ArchiveError, match="unsafe member"):
        unpack_archive(archive, tmp_path / "out" / "root")
    assert not (tmp_path / "out" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()
    assert list((tmp_path / "out" / "root").iterdir()) == []  # no half-unpacked folder left


def test_an_archive_past_the_bounds_is_refused(tmp_path, monkeypatch):
    import gsv_core.hub as hub

    archive = _zip(tmp_path / "G2PWModel.zip", {f"G2PWModel/{i}": b"12345" for i in range(4)})
    monkeypatch.setattr(hub, "MAX_ARCHIVE_MEMBERS", 3)
    with pytest.raises(hub.ArchiveError, match="4 members"):
        hub.unpack_archive(archive, tmp_path / "a")
    monkeypatch.setattr(hub, "MAX_ARCHIVE_MEMBERS", 10)
    monkeypatch.setattr(hub, "MAX_ARCHIVE_BYTES", 19)
    with pytest.raises(hub.ArchiveError, match="unpacks to more than"):
        hub.unpack_archive(archive, tmp_path / "b")
    (tmp_path / "broken.zip").write_bytes(b"PK not a zip")
    with pytest.raises(hub.ArchiveError, match="not a usable zip"):
        hub.unpack_archive(tmp_path / "broken.zip", tmp_path / "c")


def test_the_tiny_model_through_a_fake_hub_reads_as_recorded(model_dir, official_data_dir, tmp_path, no_network):
    from gsv_core.text.zh.g2pw_setup import setup_g2pw

    members = {f"G2PWModel/{p.relative_to(model_dir).as_posix()}": p.read_bytes()
               for p in model_dir.rglob("*") if p.is_file() and "tokenizer" not in p.parts}
    _fake_cache(tmp_path, members, (model_dir / "tokenizer" / "tokenizer.json").read_bytes())
    setup = setup_g2pw("auto", official_data=official_data_dir, cache_dir=tmp_path, offline=True)
    assert setup.reader is not None and setup.note is None
    call = next(call for row in _rows() for part in row["g2pw"] for call in part if call["queries"])
    assert [list(chars) for chars in setup.reader.read(call["inputs"]).pinyins] == call["outputs"]


# -- cached speaker embeddings ---------------------------------------------------------------

def test_the_weights_key_changes_with_g2pw_and_its_model(reference_dir, model_dir, official_data_dir, tmp_path):
    from random_g2pw import model_folder, tiny_shape

    from gsv_core.engine.pipeline import VoicePipeline
    from gsv_core.text.frontend import TextFrontend
    from gsv_core.text.zh.g2pw import G2PW

    models = reference_dir / "models"
    paths = (models / "s1-tiny.ckpt", models / "s2G-tiny-v2.pth", models / "chinese-hubert-tiny",
             models / "chinese-roberta-tiny")

    def key(g2pw_dir: Path | None) -> str:
        g2pw = G2PW.load(g2pw_dir, official_data=official_data_dir) if g2pw_dir else None
        frontend = TextFrontend.load(official_data=official_data_dir, g2pw=g2pw)
        return VoicePipeline.from_paths(*paths, frontend=frontend).weights_key

    other = model_folder(model_dir, tmp_path / "other-model", tiny_shape(), seed=1)
    keys = [key(None), key(model_dir), key(other), key(model_dir)]
    assert len(set(keys[:3])) == 3 and keys[3] == keys[1]
    assert all(k.startswith("v2-") for k in keys)


def test_the_int8_network_is_made_once_reads_nearly_alike_and_names_other_embeddings(g2pw, model_dir, official_data_dir,
                                                                                      tmp_path):
    """The fast CPU mode's int8 g2pW: measured 675 of 683 recorded queries keep their label on the tiny
    model (random weights: many near-ties); the floor leaves room. Its file is part of the weights key."""
    from gsv_core.text.zh.g2pw import G2PW
    from gsv_core.weights_key import weights_key

    int8 = G2PW.load(model_dir, official_data=official_data_dir, int8_dir=tmp_path)
    made = int8.model.network_file
    assert made.parent == tmp_path and made != g2pw.model.network_file and made.stat().st_size < model_dir.joinpath(
        "g2pW.onnx").stat().st_size
    stamp = made.stat().st_mtime_ns
    assert G2PW.load(model_dir, int8_dir=tmp_path).model.network_file == made
    assert made.stat().st_mtime_ns == stamp and len(list(tmp_path.iterdir())) == 1  # reused, not made again
    calls = [call for row in _rows() for part in row["g2pw"] for call in part if call["queries"]]
    same = total = 0
    for call in calls:
        for query, recorded in zip(int8.read(call["inputs"]).queries, call["queries"]):
            same, total = same + (query.label == recorded["label"]), total + 1
    assert total == 683 and same / total >= 0.97
    assert weights_key("v2", int8.files) != weights_key("v2", g2pw.files)
