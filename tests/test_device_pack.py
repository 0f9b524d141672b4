"""Data out to a lent GPU and weights back: sha256-checked, refused when damaged, never half-written."""

from __future__ import annotations

import json
import os

import pytest

from qa.errors import PackError
from qa.training import device_pack


def _export(folder, payload: bytes):
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(payload)
    (folder / "config.json").write_text('{"model_type": "bert"}')
    (folder / "training.json").write_text('{"step": 7}')
    return folder


@pytest.fixture
def parts(tmp_path):
    """An export of 2.5 MiB of incompressible bytes, split in 1 MiB parts (3 parts)."""
    payload = os.urandom(5 * 512 * 1024)
    export = _export(tmp_path / "export", payload)
    (tmp_path / "train.log").write_text("step 7\n")
    meta = device_pack.split(export, tmp_path / "out", part_mib=1, extras=[tmp_path / "train.log"])
    return tmp_path / "out", meta, payload


def test_split_then_join_round_trip(parts, tmp_path):
    out, meta, payload = parts
    assert [p["name"] for p in meta["parts"]] == ["reader.part00", "reader.part01", "reader.part02"]
    assert all(p["bytes"] <= 2**20 for p in meta["parts"])
    assert meta["training"] == {"step": 7}
    assert (out / "train.log").read_text() == "step 7\n"
    device_pack.join(out, tmp_path / "joined")
    assert (tmp_path / "joined" / "model.safetensors").read_bytes() == payload
    assert json.loads((tmp_path / "joined" / "config.json").read_text()) == {"model_type": "bert"}
    assert not list(tmp_path.glob("joined.*"))  # no temporary or .old folder left
    assert oct((tmp_path / "joined").stat().st_mode & 0o777) == "0o755"


def _previous(tmp_path):
    prev = _export(tmp_path / "joined", b"previous weights")
    return prev


@pytest.mark.parametrize("damage", ["missing", "truncated", "flipped", "meta"])
def test_damaged_parts_are_refused_and_the_previous_export_kept(parts, tmp_path, damage):
    out, meta, _ = parts
    prev = _previous(tmp_path)
    part = out / "reader.part01"
    if damage == "missing":
        part.unlink()
        match = "part reader.part01 is missing"
    elif damage == "truncated":
        part.write_bytes(part.read_bytes()[:-10])
        match = "truncated"
    elif damage == "flipped":
        data = bytearray(part.read_bytes())
        data[1000] ^= 0x01
        part.write_bytes(bytes(data))
        match = "sha256"
    else:
        (out / device_pack.META).unlink()
        match = "reader.meta.json is missing"
    with pytest.raises(PackError, match=match):
        device_pack.join(out, prev)
    assert (prev / "model.safetensors").read_bytes() == b"previous weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "joined", "out", "train.log"]


def test_a_consistent_lie_in_the_meta_is_caught_by_the_whole_sha(parts, tmp_path):
    """Parts swapped with matching per-part sums (a part from another export) still fail the whole check."""
    out, meta, _ = parts
    meta["parts"][0], meta["parts"][1] = meta["parts"][1], meta["parts"][0]
    (out / device_pack.META).write_text(json.dumps(meta))
    with pytest.raises(PackError, match="joined parts do not match"):
        device_pack.join(out, tmp_path / "joined")
    assert not (tmp_path / "joined").exists()


def test_join_cli_exits_1_with_one_line(parts, capsys):
    out, _, _ = parts
    (out / "reader.part02").unlink()
    assert device_pack.main(["join", str(out), "--to", str(out.parent / "j")]) == 1
    assert capsys.readouterr().err.startswith("error: part reader.part02 is missing")


def test_data_pack_round_trip_and_damage(tmp_path):
    data = tmp_path / "squad"
    (data / "train").mkdir(parents=True)
    (data / "dev.json").write_text('{"data": []}')
    (data / "train" / "t.json").write_text('{"data": [1]}')
    sums = device_pack.pack(data, tmp_path / ".device", names=["dev.json", "train/t.json"])
    assert set(sums["files"]) == {"dev.json", "train/t.json"}
    assert device_pack.unpack(tmp_path / ".device", tmp_path / "there") == ["dev.json", "train/t.json"]
    assert (tmp_path / "there" / "train" / "t.json").read_text() == '{"data": [1]}'
    pack = tmp_path / ".device" / device_pack.PACK
    pack.write_bytes(pack.read_bytes()[:-1])
    with pytest.raises(PackError, match="does not match its sha256"):
        device_pack.unpack(tmp_path / ".device", tmp_path / "again")


def test_pack_refuses_a_missing_training_file(tmp_path):
    with pytest.raises(PackError, match="missing"):
        device_pack.pack(tmp_path, tmp_path / ".device", names=["nope.json"])


def test_the_pack_holds_every_training_file():
    from qa.training.train_reader import DATA_MIXES

    assert set(DATA_MIXES["full"]) | {"dev-v1.1.json"} == set(device_pack.training_files())


def test_a_missing_pack_or_a_meta_of_another_format_is_a_pack_error(parts, tmp_path):
    """The sums came with the call's carry but the pack did not; a meta file without its parts list:
    PackError (one line from the CLI), not FileNotFoundError / KeyError."""
    data = tmp_path / "squad"
    data.mkdir()
    (data / "dev.json").write_text('{"data": []}')
    device_pack.pack(data, tmp_path / ".device", names=["dev.json"])
    (tmp_path / ".device" / device_pack.PACK).unlink()
    with pytest.raises(PackError, match="data.tar.xz is missing"):
        device_pack.unpack(tmp_path / ".device", tmp_path / "there")
    out, meta, _ = parts
    (out / device_pack.META).write_text(json.dumps({"bytes": meta["bytes"], "sha256": meta["sha256"]}))
    with pytest.raises(PackError, match="reader.meta.json"):
        device_pack.join(out, tmp_path / "joined")
    assert not (tmp_path / "joined").exists()


def test_join_into_a_folder_that_cannot_be_written_is_one_line(parts, tmp_path, capsys):
    out, _, _ = parts
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert device_pack.main(["join", str(out), "--to", str(blocker / "export")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(blocker) in err and len(err.splitlines()) == 1
