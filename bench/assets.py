"""Asset-transfer benchmark: the store's checked save and load against raw fsspec copies.

Every asset the store saves is hashed (sha256) and every large one it loads is verified, so a
handler never serves a corrupt model. That safety must cost little next to the copy itself:
the target is at most 10% over fsspec's own ``put_file`` / ``get_file`` on the same backend.
Both sides move the same random file on the same filesystem object; they alternate (and swap
order every round) so machine noise hits both, dirty pages are flushed before every timed run
so one side's writeback never lands in the other's time, and an untimed warm-up round comes
first. The S3 backend is a moto server on loopback, so its numbers show the CPU cost of the
store over s3fs, not a real network's.

Usage: ``python bench/assets.py [--size-mb 200] [--repeat 5] [--s3-repeat 5] [--durable]``
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # tests.s3 (model_steps is installed in the venv)

from tests.s3 import MotoServer, create_bucket, storage_options  # noqa: E402

from model_steps.store.manifest import AssetRecord  # noqa: E402
from model_steps.store.model_store import ModelStore, open_store  # noqa: E402

TARGET_OVERHEAD = 0.10
WRITE_CHUNK = 8 * 2**20
S3_READ_TIMEOUT_S = 120
"""moto answers a 200 MB multipart upload slower than the tests' fail-fast 5 s read timeout."""


@dataclass
class Pair:
    """Timings of one operation on one backend: raw fsspec and the store, one per round."""

    backend: str
    operation: str
    raw: list[float] = field(default_factory=list)
    store: list[float] = field(default_factory=list)

    @property
    def raw_median(self) -> float:
        return statistics.median(self.raw)

    @property
    def store_median(self) -> float:
        return statistics.median(self.store)

    @property
    def ratio(self) -> float:
        """Median of per-round ratios: each round ran both back to back."""
        return statistics.median(s / r for s, r in zip(self.store, self.raw, strict=True))


def write_random_file(path: Path, size_mb: int) -> int:
    """``size_mb`` MiB of random bytes (incompressible, so no backend can shortcut them)."""
    remaining = size_mb * 2**20
    with path.open("wb") as handle:
        while remaining:
            chunk = min(WRITE_CHUNK, remaining)
            handle.write(os.urandom(chunk))
            remaining -= chunk
    return size_mb * 2**20


def hash_seconds(path: Path, repeat: int) -> float:
    """Median seconds to sha256 the (page-cached) file alone: the floor of any checked copy."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        with path.open("rb") as handle:
            hashlib.file_digest(handle, "sha256")
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def settle() -> None:
    """Flush dirty pages so the previous run's writeback is not billed to the next one."""
    os.sync()


def timed(action: Callable[[], Any], durable: bool) -> float:
    """Seconds for ``action``; with ``durable``, until its writes reached the disk as well."""
    settle()
    start = time.perf_counter()
    action()
    if durable:
        settle()
    return time.perf_counter() - start


def remove_local(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def remove_remote(fs: Any, path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        fs.rm_file(path)


def bench_backend(
    name: str, store: ModelStore, source: Path, work: Path, repeat: int, durable: bool
) -> list[Pair]:
    """Upload then download the same file ``repeat`` times each way, raw and through the store.

    Raw and store write to the same remote key and the same local file (removed, untimed,
    before each run), so neither side gets a warmer target than the other.
    """
    fs = store.fs
    remote = store.path("versions", "1", "step", "asset.bin")
    url = store.url("versions", "1", "step", "asset.bin")
    landed = work / f"{name}-download.bin"
    upload, download = Pair(name, "save"), Pair(name, "load")
    record: AssetRecord | None = None

    def raw_put() -> None:
        fs.put_file(str(source), remote)

    def store_put() -> None:
        nonlocal record
        size, sha256 = store.upload_file(str(source), url)
        record = AssetRecord(url=url, size=size, sha256=sha256, serializer="joblib")

    def raw_get() -> None:
        fs.get_file(remote, str(landed))

    def store_get() -> None:
        assert record is not None
        store.download_asset(record, str(landed))

    def one_round(keep: bool, store_first: bool) -> None:
        puts = [("store", store_put), ("raw", raw_put)]
        gets = [("store", store_get), ("raw", raw_get)]
        if not store_first:
            puts.reverse()
            gets.reverse()
        for side, put in puts:
            remove_remote(fs, remote)
            seconds = timed(put, durable)
            if keep:
                getattr(upload, side).append(seconds)
        for side, get in gets:
            remove_local(landed)
            seconds = timed(get, durable)
            if keep:
                getattr(download, side).append(seconds)
        remove_local(landed)

    one_round(keep=False, store_first=False)  # warm-up: imports, connections, page cache
    for index in range(repeat):
        one_round(keep=True, store_first=index % 2 == 0)
    remove_remote(fs, remote)
    return [upload, download]


@contextlib.contextmanager
def s3_store(work: Path) -> Iterator[ModelStore]:
    """A store in a fresh bucket on a private moto server, whose process group always dies."""
    with MotoServer(work / "moto_server.log").start() as server:
        bucket = create_bucket(server.endpoint)
        options = storage_options(server.endpoint)
        options["config_kwargs"]["read_timeout"] = S3_READ_TIMEOUT_S
        yield open_store(f"s3://{bucket}/models/bench", options)


def render(
    pairs: Sequence[Pair], size_mb: int, repeats: dict[str, int], durable: bool, hashing: float
) -> str:
    """The table: medians per side, the paired ratio and the overhead it means."""
    runs = ", ".join(f"{backend} {n}" for backend, n in repeats.items())
    until = "on disk (sync timed)" if durable else "in the page cache (sync not timed)"
    rows = [
        f"{size_mb} MiB asset, medians of alternating rounds ({runs}); ratio = median of "
        "per-round store/raw",
        f"local copies timed until the bytes are {until}",
        f"{'backend':<8} {'operation':<10} {'raw s':>8} {'store s':>8} {'ratio':>7} "
        f"{'overhead':>9} {'raw MB/s':>9}",
    ]
    for p in pairs:
        rows.append(
            f"{p.backend:<8} {p.operation:<10} {p.raw_median:>8.3f} {p.store_median:>8.3f} "
            f"{p.ratio:>7.3f} {100 * (p.ratio - 1):>8.1f}% {size_mb / p.raw_median:>9.0f}"
        )
    rows.append(
        f"sha256 of the file alone: {hashing:.3f} s ({size_mb / hashing:.0f} MB/s, one core); "
        "a checked copy takes at least max(copy, hash) when the bytes are local (hashed "
        "beside the copy), copy + hash when they arrive from S3 (hashed once landed)"
    )
    return "\n".join(rows)


def render_samples(pairs: Sequence[Pair]) -> str:
    """Every timed round, to judge the noise behind the medians."""
    rows = ["per-round seconds (raw / store)"]
    for p in pairs:
        rounds = "  ".join(f"{r:.3f}/{s:.3f}" for r, s in zip(p.raw, p.store, strict=True))
        rows.append(f"{p.backend:<8} {p.operation:<10} {rounds}")
    return "\n".join(rows)


def verdicts(pairs: Sequence[Pair]) -> list[str]:
    limit = 1 + TARGET_OVERHEAD
    return [
        f"{p.backend} {p.operation}: {100 * (p.ratio - 1):+.1f}% "
        f"(target <= {100 * TARGET_OVERHEAD:.0f}%: {'met' if p.ratio <= limit else 'MISSED'})"
        for p in pairs
    ]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds on local disk")
    parser.add_argument("--s3-repeat", type=int, default=5, help="timed rounds on S3 (moto)")
    parser.add_argument("--no-s3", action="store_true", help="skip the S3 backend")
    parser.add_argument("--samples", action="store_true", help="also print every round")
    parser.add_argument(
        "--durable",
        action="store_true",
        help="time each copy until its bytes are on disk (sync), not just in the page cache",
    )
    return parser.parse_args(argv)


def progress(label: str) -> None:
    """Progress on stderr, so the table on stdout stays clean."""
    print(f"... {label}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="model-steps-bench-assets-"))
    try:
        source = work / "source.bin"
        write_random_file(source, args.size_mb)
        hashing = hash_seconds(source, 3)
        pairs: list[Pair] = []
        repeats = {"local": args.repeat}
        started = time.perf_counter()
        progress(f"local disk, {args.repeat} rounds")
        local = open_store(str(work / "local-store" / "bench"))
        pairs += bench_backend("local", local, source, work, args.repeat, args.durable)
        if not args.no_s3:
            progress(f"S3 (moto), {args.s3_repeat} rounds")
            repeats["s3"] = args.s3_repeat
            with s3_store(work) as remote:
                pairs += bench_backend("s3", remote, source, work, args.s3_repeat, args.durable)
        progress(f"done in {time.perf_counter() - started:.0f} s")
        print(render(pairs, args.size_mb, repeats, args.durable, hashing))
        print()
        print("\n".join(verdicts(pairs)))
        if args.samples:
            print()
            print(render_samples(pairs))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
