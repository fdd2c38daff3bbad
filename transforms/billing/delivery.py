"""Delivery: a written batch checked against its manifest, packaged into the
outbox, and receipted. A template for the hand-off to the clearinghouse: a
practice replaces the outbox with its upload (SFTP, API) and keeps the receipt.
Reads claim files only, never the warehouse; idempotent (the receipt is written
last, so an interrupted delivery is done again and a delivered batch never
packaged twice).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from transforms.ingest.readers import sha256_file

MANIFEST = "manifest.json"


RECEIPT_SUFFIX = ".receipt.json"


PACKAGE_SUFFIX = ".tar.gz"


class ManifestMismatch(Exception):
    """A batch's files are not the ones its manifest describes: never deliver it."""


def batches(claims_dir: str | Path) -> list[Path]:
    """Complete batches: folders holding a manifest (a batch being written has none
    yet, or lives under a hidden or temporary name)."""
    root = Path(claims_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir()
                  if p.is_dir() and not p.name.startswith((".", "_")) and (p / MANIFEST).is_file())


def receipt_path(outbox: str | Path, batch_id: str) -> Path:
    return Path(outbox) / f"{batch_id}{RECEIPT_SUFFIX}"


def undelivered_batches(claims_dir: str | Path, outbox: str | Path) -> list[str]:
    """Batches without a receipt in the outbox, oldest first. The receipt is written
    last, so a delivery that died half-way is simply done again."""
    return [str(b) for b in batches(claims_dir) if not receipt_path(outbox, b.name).exists()]


def manifest_files(manifest: Mapping[str, Any]) -> dict[str, str]:
    """relative path -> SHA-256 of every file in the batch but the manifest itself."""
    files = manifest.get("files")
    if not isinstance(files, Mapping) or not files:
        raise ManifestMismatch("manifest.json lists no files with their SHA-256")
    return {str(name): str(digest) for name, digest in files.items()}


def verify_manifest(batch: str | Path) -> dict:
    """Check every file the manifest lists against its SHA-256, and that nothing
    outside the manifest was added. Returns the manifest."""
    batch = Path(batch)
    manifest = json.loads((batch / MANIFEST).read_text(encoding="utf-8"))
    expected = manifest_files(manifest)
    problems = []
    for name, digest in sorted(expected.items()):
        path = batch / name
        if not path.is_file():
            problems.append(f"{path}: listed in the manifest but missing")
        elif sha256_file(path) != digest.lower():
            problems.append(f"{path}: SHA-256 differs from the manifest (changed after the batch was written)")
    present = {p.relative_to(batch).as_posix() for p in batch.rglob("*") if p.is_file()}
    for extra in sorted(present - set(expected) - {MANIFEST}):
        problems.append(f"{batch / extra}: not in the manifest")
    if problems:
        raise ManifestMismatch("\n".join(problems))
    return manifest


def _write_private(path: Path, data: bytes) -> None:
    """Write a file readable by its owner only (it holds PHI), atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def package_batch(batch: str | Path) -> bytes:
    """The batch as a reproducible .tar.gz (sorted names, no owners, no timestamps): the
    same batch always packages to the same bytes, so its SHA-256 can be compared."""
    batch = Path(batch)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(p for p in batch.rglob("*") if p.is_file()):
                info = tarfile.TarInfo(f"{batch.name}/{path.relative_to(batch).as_posix()}")
                info.size = path.stat().st_size
                info.mode = 0o600
                info.mtime = 0
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
    return buf.getvalue()


def deliver_batch(batch: str | Path, outbox: str | Path, delivered_by: str = "ccm_claims_delivery") -> dict:
    """Verify, package into the outbox and write a receipt. A template for the hand-off:
    a practice replaces the outbox with its clearinghouse upload (SFTP, API) and keeps
    the receipt. Idempotent: a batch with a receipt is not packaged again."""
    batch, outbox = Path(batch), Path(outbox)
    receipt_file = receipt_path(outbox, batch.name)
    if receipt_file.exists():
        return json.loads(receipt_file.read_text(encoding="utf-8")) | {"already_delivered": True}
    manifest = verify_manifest(batch)
    outbox.mkdir(parents=True, exist_ok=True)
    os.chmod(outbox, 0o700)
    package = outbox / f"{batch.name}{PACKAGE_SUFFIX}"
    data = package_batch(batch)
    _write_private(package, data)
    receipt = {
        "batch_id": batch.name,
        "as_of": manifest.get("as_of"),
        "package": str(package),
        "package_sha256": hashlib.sha256(data).hexdigest(),
        "package_bytes": len(data),
        "files_verified": len(manifest_files(manifest)),
        "manifest_sha256": sha256_file(batch / MANIFEST),
        "control_totals": manifest.get("control_totals"),
        "delivered_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "delivered_by": delivered_by,
    }
    _write_private(receipt_file, (json.dumps(receipt, indent=2, default=str) + "\n").encode("utf-8"))
    return receipt
