"""What travels to and from a lent GPU for one training call (``bench/device_train.sh``).

There: the training data, packed with xz into the git-ignored ``.device/`` (named
in the call's ``carry``), with the sha256 of the pack and of every file in it.
Back: the exported reader as one tar stream cut into parts of at most
``ReaderRunConfig.part_mib`` MiB (a call returns at most 8 files of 16 MiB), with
a meta file holding each part's size and sha256 and the whole stream's.

    python -m qa.training.device_pack pack [--data DIR] [--to .device]      # make train-reader-device-pack
    python -m qa.training.device_pack unpack .device --to DIR                # on the device
    python -m qa.training.device_pack split EXPORT --to $OUT [--extra FILE]  # on the device
    python -m qa.training.device_pack join PARTS_DIR --to DIR                # make train-reader-device-join

``join`` checks every part and the whole before anything is written, extracts
into a temporary folder and renames it into place: a missing, truncated or
altered part is refused with ``PackError`` and the previous export stays as it was.
Standard library only: the device image lacks most of the project's packages.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

from qa._files import atomic_write_bytes, sha256_file
from qa.config import ReaderRunConfig
from qa.errors import PackError

PACK = "data.tar.xz"
PACK_SUMS = "data.sha256.json"
META = "reader.meta.json"
PART = "reader.part{:02d}"


# -- data there -----------------------------------------------------------------------------------


def training_files() -> list[str]:
    """Every file the full mix and the validation read (relative to the SQuAD folder)."""
    from qa.training.train_reader import DATA_MIXES

    return sorted(set(DATA_MIXES["full"]) | {"dev-v1.1.json"})


def pack(data_dir: Path, out_dir: Path, names: list[str] | None = None) -> dict:
    """xz-pack ``names`` (default: the training files) from ``data_dir`` into ``out_dir``."""
    names = names or training_files()
    out_dir.mkdir(parents=True, exist_ok=True)
    sums = {"files": {}}
    tmp = out_dir / (PACK + ".tmp")
    with tarfile.open(tmp, "w:xz", preset=6) as tar:
        for name in names:
            src = Path(data_dir) / name
            if not src.is_file():
                raise PackError(f"{src} is missing: the pack needs every training file ({', '.join(names)})")
            sums["files"][name] = sha256_file(src)
            tar.add(src, arcname=name)
    os.replace(tmp, out_dir / PACK)
    sums["pack"] = sha256_file(out_dir / PACK)
    sums["pack_bytes"] = (out_dir / PACK).stat().st_size
    atomic_write_bytes(out_dir / PACK_SUMS, json.dumps(sums, indent=1).encode())
    return sums


def unpack(pack_dir: Path, dest: Path) -> list[str]:
    """Check and extract a data pack; every file is checked against its sha256."""
    sums_path = Path(pack_dir) / PACK_SUMS
    if not sums_path.exists():
        raise PackError(f"{sums_path} is missing: run `make train-reader-device-pack` first")
    sums = json.loads(sums_path.read_text())
    if not (Path(pack_dir) / PACK).is_file():
        raise PackError(f"{Path(pack_dir) / PACK} is missing beside its sha256 file: carry the whole pack folder")
    if sha256_file(Path(pack_dir) / PACK) != sums["pack"]:
        raise PackError(f"{Path(pack_dir) / PACK} does not match its sha256: pack it again")
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(Path(pack_dir) / PACK, "r:xz") as tar:
        tar.extractall(dest, filter="data")
    for name, digest in sums["files"].items():
        if not (dest / name).is_file() or sha256_file(dest / name) != digest:
            raise PackError(f"{dest / name} does not match its sha256 after unpacking")
    return sorted(sums["files"])


# -- weights back ---------------------------------------------------------------------------------


def split(export_dir: Path, out_dir: Path, part_mib: int | None = None, extras: list[Path] = ()) -> dict:
    """Tar ``export_dir`` (uncompressed: fp16 weights do not shrink) and cut it into parts."""
    part_bytes = (part_mib or ReaderRunConfig().part_mib) * 1024 * 1024
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for f in sorted(Path(export_dir).iterdir()):
            if f.is_file():
                tar.add(f, arcname=f.name)
    data = buf.getvalue()
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = []
    for i, off in enumerate(range(0, len(data), part_bytes)):
        chunk = data[off : off + part_bytes]
        name = PART.format(i)
        atomic_write_bytes(out_dir / name, chunk)
        parts.append({"name": name, "bytes": len(chunk), "sha256": hashlib.sha256(chunk).hexdigest()})
    meta = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "parts": parts,
            "files": sorted(f.name for f in Path(export_dir).iterdir() if f.is_file())}
    training = Path(export_dir) / "training.json"
    if training.exists():
        meta["training"] = json.loads(training.read_text())
    for extra in extras:
        if Path(extra).is_file():
            shutil.copyfile(extra, out_dir / Path(extra).name)
    atomic_write_bytes(out_dir / META, json.dumps(meta, indent=1).encode())
    return meta


def verify_parts(parts_dir: Path) -> tuple[dict, bytes]:
    """Every part present, of its size and sha256, and the whole stream's sha256: else ``PackError``."""
    meta_path = Path(parts_dir) / META
    if not meta_path.is_file():
        raise PackError(f"{meta_path} is missing: give the folder the device call's files came back to")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as e:
        raise PackError(f"{meta_path} is not valid JSON ({e}): fetch it again") from e
    if not (isinstance(meta, dict) and isinstance(meta.get("parts"), list) and "sha256" in meta
            and all(isinstance(p, dict) and {"name", "bytes", "sha256"} <= set(p) for p in meta["parts"])):
        raise PackError(f"{meta_path} lacks the parts list or the sha256 (not written by device_pack split?)")
    whole = hashlib.sha256()
    chunks = []
    for part in meta["parts"]:
        p = Path(parts_dir) / part["name"]
        if not p.is_file():
            raise PackError(f"part {part['name']} is missing in {parts_dir} ({len(meta['parts'])} parts expected)")
        data = p.read_bytes()
        if len(data) != part["bytes"]:
            raise PackError(f"part {part['name']} has {len(data)} bytes, expected {part['bytes']}: truncated copy?")
        if hashlib.sha256(data).hexdigest() != part["sha256"]:
            raise PackError(f"part {part['name']} does not match its sha256: damaged copy")
        whole.update(data)
        chunks.append(data)
    if whole.hexdigest() != meta["sha256"]:
        raise PackError("the joined parts do not match the export's sha256")
    return meta, b"".join(chunks)


def join(parts_dir: Path, target: Path) -> dict:
    """Verify the parts, rebuild the export in a temporary folder, then rename it into ``target``."""
    meta, data = verify_parts(parts_dir)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=target.name + ".join-"))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
            tar.extractall(tmp, filter="data")
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide the export from other users
        for f in tmp.iterdir():
            f.chmod(0o644)
        missing = [f for f in meta["files"] if not (tmp / f).is_file()]
        if missing or not (tmp / "model.safetensors").is_file():
            raise PackError(f"the joined export lacks {', '.join(missing) or 'model.safetensors'}")
        old = target.with_name(target.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", required=True)
    a = sub.add_parser("pack", help="xz-pack the training data for the device")
    a.add_argument("--data", type=Path, help="SQuAD folder (default ../shared/data/squad, QA_DATA)")
    a.add_argument("--to", type=Path, default=Path(".device"))
    a = sub.add_parser("unpack", help="check and unpack a data pack")
    a.add_argument("pack_dir", type=Path)
    a.add_argument("--to", type=Path, required=True)
    a = sub.add_parser("split", help="cut an export into sha256-checked parts")
    a.add_argument("export_dir", type=Path)
    a.add_argument("--to", type=Path, required=True)
    a.add_argument("--part-mib", type=int)
    a.add_argument("--extra", type=Path, action="append", default=[], help="a small file to send back as is")
    a = sub.add_parser("join", help="verify parts and rebuild the export (atomic)")
    a.add_argument("parts_dir", type=Path)
    a.add_argument("--to", type=Path, required=True)
    args = p.parse_args(argv)
    try:
        if args.action == "pack":
            from qa.evaluation import squad

            sums = pack(Path(args.data or squad.SQUAD_DIR), args.to)
            print(f"{args.to / PACK}: {sums['pack_bytes'] / 2**20:.1f} MiB, {len(sums['files'])} files, "
                  f"sha256 {sums['pack'][:16]}…")
        elif args.action == "unpack":
            names = unpack(args.pack_dir, args.to)
            print(f"unpacked and checked {len(names)} files into {args.to}")
        elif args.action == "split":
            meta = split(args.export_dir, args.to, args.part_mib, args.extra)
            print(f"{len(meta['parts'])} parts, {meta['bytes'] / 2**20:.1f} MiB, sha256 {meta['sha256'][:16]}… in {args.to}")
        else:
            meta = join(args.parts_dir, args.to)
            print(f"joined {len(meta['parts'])} parts into {args.to} (sha256 {meta['sha256'][:16]}… checked)")
    except (PackError, OSError) as e:  # OSError: a full disk, a folder that cannot be written
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
