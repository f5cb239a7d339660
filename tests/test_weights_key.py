"""The weights fingerprint that keys stored speaker embeddings."""

from __future__ import annotations

import os

import pytest

from gsv_core.weights_key import weights_key


def test_weights_key_follows_file_contents(tmp_path):
    gpt, model_dir = tmp_path / "s1.ckpt", tmp_path / "hubert"
    gpt.write_bytes(os.urandom(3 << 20))
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    key = weights_key("v2Pro", [gpt, model_dir])
    assert key.startswith("v2Pro-") and key == weights_key("v2Pro", [str(gpt), model_dir])
    assert key != weights_key("v2ProPlus", [gpt, model_dir])
    (model_dir / "config.json").write_text('{"a": 1}')
    changed = weights_key("v2Pro", [gpt, model_dir])
    assert changed != key
    data = bytearray(gpt.read_bytes())
    data[-1] ^= 0xFF  # last MiB
    gpt.write_bytes(bytes(data))
    assert weights_key("v2Pro", [gpt, model_dir]) != changed
    for version, files in (("v2/../x", [gpt]), ("v2", []), ("v2", [tmp_path / "missing.pth"])):
        with pytest.raises(ValueError):
            weights_key(version, files)
