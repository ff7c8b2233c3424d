"""Long batch jobs over many families that survive interruption.

``run_in_chunks(work, runs, out_dir)`` splits the families of ``runs`` into chunks, calls ``work(sub_runs)``
(which returns a list of JSON-able per-family records with a ``"family"`` key) on each chunk not yet done,
and writes each finished chunk to ``out_dir/chunks/chunk_00012.json`` atomically (write to a temporary
file, then rename), so a killed job leaves only whole chunks behind. Run again with ``resume=True`` and it
loads the finished chunks and does only the rest: no family is lost or fitted twice. A job description
(``job.json``: families, chunk size, what the work is) guards against resuming a different job in the same
folder. Progress is printed per chunk.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .data import Runs, as_runs

__all__ = ["run_in_chunks"]


def _write_atomic(path: str, obj) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(obj, fh, indent=1, default=float)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def run_in_chunks(
    work: Callable[[Runs], list[dict[str, Any]]],
    runs: Runs | Any,
    out_dir: str,
    *,
    chunk_size: int = 100,
    resume: bool = False,
    description: dict[str, Any] | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> list[dict[str, Any]]:
    """Run ``work`` over the families of ``runs`` in chunks of ``chunk_size`` families, saving each chunk.

    Without ``resume`` an existing job folder is refused (nothing a user wrote is overwritten); with it,
    the folder must hold the same job (same families, chunk size and description). ``overwrite`` (``--force``)
    starts the job afresh: the earlier job's own files (``job.json``, ``chunks/chunk_*.json``) are removed first.
    """
    runs = as_runs(runs)
    if runs.family is None:
        raise ValueError(f"{runs.source}: no family column; load the table with family='COLUMN'")
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    families = list(dict.fromkeys(runs.family.tolist()))
    chunks = [families[i:i + chunk_size] for i in range(0, len(families), chunk_size)]
    job = {"families": [str(f) for f in families], "chunk_size": int(chunk_size), "description": description or {}}
    chunk_dir = os.path.join(out_dir, "chunks")
    job_path = os.path.join(out_dir, "job.json")
    if os.path.exists(job_path) and overwrite and not resume:
        for name in sorted(os.listdir(chunk_dir)) if os.path.isdir(chunk_dir) else []:
            if name.startswith("chunk_") and name.endswith(".json"):
                os.remove(os.path.join(chunk_dir, name))
        os.remove(job_path)
    if os.path.exists(job_path):
        if not resume:
            raise ValueError(f"{out_dir} already holds a job; pass resume (--resume) to continue it, or choose another folder")
        with open(job_path) as fh:
            old = json.load(fh)
        if old != json.loads(json.dumps(job, default=float)):
            raise ValueError(f"{out_dir} holds a different job (other families, chunk size or settings); not resuming it")
    else:
        os.makedirs(chunk_dir, exist_ok=True)
        _write_atomic(job_path, job)
    results: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for i, fams in enumerate(chunks):
        path = os.path.join(chunk_dir, f"chunk_{i:05d}.json")
        if os.path.exists(path):
            with open(path) as fh:
                records = json.load(fh)
            state = "done earlier"
        else:
            sub = runs.select(np.isin(runs.family, fams))
            records = work(sub)
            got = sorted(str(r["family"]) for r in records)
            if got != sorted(str(f) for f in fams):
                raise RuntimeError(f"chunk {i}: work returned families {got}, expected {sorted(map(str, fams))}")
            _write_atomic(path, records)
            state = "fitted"
        results.extend(records)
        if progress:
            print(f"chunk {i + 1}/{len(chunks)} ({len(fams)} families) {state}; {time.perf_counter() - t0:.1f} s",
                  file=sys.stderr, flush=True)
    order = {str(f): k for k, f in enumerate(families)}
    return sorted(results, key=lambda r: order[str(r["family"])])
