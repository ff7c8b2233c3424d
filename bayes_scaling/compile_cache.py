"""Compiled programs kept between processes, so that a second process does not wait on the compiler.

Two caches, both under one per-user folder (default ``$XDG_CACHE_HOME/bayes_scaling`` or
``~/.cache/bayes_scaling``; ``BAYES_SCALING_CACHE_DIR=PATH`` chooses another, ``BAYES_SCALING_CACHE_DIR=off``
turns both off):

* ``xla/``: JAX's own persistent compilation cache (``jax_compilation_cache_dir``): compiled executables keyed
  by the program's HLO. Size-bounded (LRU, 2 GB) so that JAX guards each read and write with a file lock:
  safe when several processes run at once.
* ``programs/``: the package's large programs (multistart L-BFGS, NUTS chains, forecasts) serialised with
  :mod:`jax.export` after their first trace. JAX's cache skips only the XLA compile; tracing and lowering a
  NUTS sampler or an L-BFGS loop to HLO costs as much again in Python, every process. A stored program is read
  back instead, and its compile is then found in ``xla/``. Entries are keyed by a name, a token naming what
  the program closes over (a built-in law and its options; programs of user-declared laws are not stored,
  since their code could change under the same name), the shapes and dtypes of the arguments, the device
  count and backend, and a hash of this package's source and of the jax, numpyro and optax versions: a
  changed package never reads an old program. Files are written to a temporary name and renamed (atomic),
  and a file that cannot be read back is ignored and written again.

:func:`enable_compilation_cache` turns both on (the CLI and the notebooks call it; the library alone never
changes JAX's configuration at import). Without it, :func:`run` simply calls the jitted function.
"""

from __future__ import annotations

import gc
import hashlib
import os
import sys
import time
import warnings
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["enable_compilation_cache", "cache_dir", "run", "token_of", "program_stats", "guard_memory_maps"]

_ENV = "BAYES_SCALING_CACHE_DIR"
_OFF = ("off", "0", "none", "no", "false")
_STATE: dict[str, Any] = {"dir": None, "version": None}
_MEMORY: dict[str, Callable] = {}
_UNSUPPORTED: set = set()
_STATS = {"traced": 0, "loaded": 0, "memory": 0, "plain": 0}
XLA_CACHE_BYTES = 2 * 1024 ** 3
#: share of the kernel's per-process limit of memory mappings (vm.max_map_count) at which compiled programs are dropped
MAPS_SHARE = 0.7
_MAPS = {"limit": None, "checked": 0.0, "cleared": 0}
#: programs that compile faster than this are not stored (reading one back costs ~30 ms: more than a small op's compile)
MIN_COMPILE_SECONDS = 0.2


def cache_dir(path: str | os.PathLike | None = None) -> str | None:
    """The cache folder: ``path``, else ``$BAYES_SCALING_CACHE_DIR``, else the per-user default; ``None``
    when turned off (``off``)."""
    if path is None:
        path = os.environ.get(_ENV, "").strip() or None
    if path is not None and str(path).strip().lower() in _OFF:
        return None
    if path is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = os.path.join(base, "bayes_scaling")
    return os.path.abspath(os.fspath(path))


def _writable(path: str) -> bool:
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".probe-{os.getpid()}")
        with open(probe, "w"):
            pass
        os.remove(probe)
        return True
    except OSError:
        return False


def enable_compilation_cache(path: str | os.PathLike | None = None) -> str | None:
    """Turn on both caches in ``path`` (see the module docstring for the default); returns the folder, or
    ``None`` when the cache is off or the folder cannot be written (a warning says so; work goes on without
    it). JAX's own cache is configured only if the user has not set ``jax_compilation_cache_dir``."""
    root = cache_dir(path)
    if root is None:
        _STATE["dir"] = None
        return None
    if not _writable(root):
        warnings.warn(f"compilation cache {root} cannot be written; compiling in this process only "
                      f"(set {_ENV} to another folder, or to 'off')", stacklevel=2)
        _STATE["dir"] = None
        return None
    try:
        import filelock  # noqa: F401  (JAX's size-bounded cache locks its files with it)
    except ImportError:
        warnings.warn("the filelock package is missing (pip install filelock): JAX's compilation cache stays off; "
                      "compiled programs are still kept", stacklevel=2)
    else:
        _xla_cache(root)
    os.makedirs(os.path.join(root, "programs"), exist_ok=True)
    _STATE["dir"] = root
    return root


def _xla_cache(root: str) -> None:
    if not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", os.path.join(root, "xla"))
        jax.config.update("jax_compilation_cache_max_size", XLA_CACHE_BYTES)  # LRU: reads and writes under a file lock
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)


def _code_version() -> str:
    """A hash of this package's source files and of the versions of what its programs are built from, taken when
    this module is imported (with the package): a process that runs old code after its files were edited or
    upgraded on disk never stores its programs under the new code's name."""
    if _STATE["version"] is None:
        h = hashlib.sha256()
        for pkg in ("jax", "jaxlib", "numpyro", "optax"):
            try:
                h.update(f"{pkg}={metadata.version(pkg)};".encode())
            except metadata.PackageNotFoundError:
                h.update(f"{pkg}=?;".encode())
        h.update(sys.version.encode())
        here = Path(__file__).resolve().parent
        for f in sorted(here.rglob("*.py")):
            h.update(str(f.relative_to(here)).encode())
            h.update(f.read_bytes())
        _STATE["version"] = h.hexdigest()
    return _STATE["version"]


def _signature(args) -> str:
    leaves, tree = jax.tree_util.tree_flatten(args)
    shapes = ";".join(f"{tuple(np.shape(a))}:{jnp.result_type(a)}" for a in leaves)
    return f"{tree}|{shapes}"


def token_of(obj) -> str | None:
    """The cache token of a model or function: its ``cache_token`` attribute (laws, models made by this package),
    else the qualified name of a function defined in this package, else ``None`` (not storable)."""
    if hasattr(obj, "cache_token"):
        return obj.cache_token
    mod = getattr(obj, "__module__", "") or ""
    qual = getattr(obj, "__qualname__", "")
    if mod.startswith("bayes_scaling.") and qual and "<locals>" not in qual:
        return f"{mod}.{qual}"
    return None


def _static_text(static: dict) -> str | None:
    """A stable text for static arguments (plain values; a law by its cache token); ``None`` when one has none."""
    parts = []
    for k in sorted(static):
        v = static[k]
        if hasattr(v, "cache_token"):
            v = v.cache_token
            if v is None:
                return None
        elif not isinstance(v, (int, float, str, bool, tuple, type(None))):
            return None
        parts.append(f"{k}={v!r}")
    return ",".join(parts)


def run(name: str, token: str | None, jitted: Callable, *args, **static):
    """``jitted(*args, **static)``, through a stored program when the cache is on and the program can be named:
    ``token`` names what ``jitted`` closes over (``""``: nothing; ``None``: not storable, e.g. a model of a
    user-declared law) and ``static`` holds jit's static arguments (plain values or laws). ``name`` is the
    program's kind (it names the file)."""
    guard_memory_maps()
    root = _STATE["dir"]
    statics = _static_text(static) if root is not None and token is not None else None
    if statics is None:
        _STATS["plain"] += 1
        return jitted(*args, **static)
    backend = jax.default_backend()
    key_text = (f"{name}|{token}|{statics}|{_signature(args)}|{backend}:{len(jax.devices())}"
                f"|x64={jax.config.jax_enable_x64}|{_code_version()}")
    key = hashlib.sha256(key_text.encode()).hexdigest()[:40]
    fn = _MEMORY.get(key)
    if fn is not None:
        _STATS["memory"] += 1
        return fn(*args)
    if key in _UNSUPPORTED:
        return jitted(*args, **static)
    fn = _load_or_export(os.path.join(root, "programs", f"{name}-{key}.jaxexport"), jitted, args, static)
    if fn is None:
        _UNSUPPORTED.add(key)
        return jitted(*args, **static)
    _MEMORY[key] = fn
    return fn(*args)


def _load_or_export(path: str, jitted: Callable, args, static):
    """The program as a jitted function of its arguments: read back from ``path`` (serialised with :mod:`jax.export`:
    no tracing), else traced, exported and written there. ``None`` when the program cannot be exported (it is then
    run as it is). Its compile is looked up in JAX's own cache either way."""
    from jax import export

    if os.path.exists(path):
        try:
            with open(path, "rb") as fh:
                exported = export.deserialize(bytearray(fh.read()))
            _STATS["loaded"] += 1
            return _callable(exported)
        except Exception:  # unreadable (a partial write from a crashed process, another version): export again
            pass
    try:
        exported = export.export(jitted)(*args, **static)
        blob = exported.serialize()
    except ImportError as err:  # serialisation needs flatbuffers: say so once, keep compiling in this process
        if not _STATE.get("warned_import"):
            _STATE["warned_import"] = True
            warnings.warn(f"compiled programs cannot be kept between processes ({err}; pip install flatbuffers)",
                          stacklevel=3)
        return None
    except Exception:  # a program export cannot hold: run it as it is
        return None
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as fh:
            fh.write(blob)
        os.replace(tmp, path)
    except OSError:
        pass
    _STATS["traced"] += 1
    return _callable(exported)


def _callable(exported):
    """The exported program as a jitted function; one exported for several devices runs over a mesh of as many
    (its arguments are given to every device; the program splits them itself)."""
    if exported.nr_devices <= 1:
        return jax.jit(exported.call)
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.array(jax.devices()[: exported.nr_devices]), ("d",))
    everywhere = NamedSharding(mesh, PartitionSpec())
    return jax.jit(exported.call, in_shardings=everywhere, out_shardings=everywhere)


def _map_limit() -> int:
    if _MAPS["limit"] is None:
        try:
            with open("/proc/sys/vm/max_map_count") as fh:
                _MAPS["limit"] = int(fh.read().strip())
        except (OSError, ValueError):
            _MAPS["limit"] = 0  # not Linux, or not readable: nothing to guard
    return _MAPS["limit"]


def guard_memory_maps(every: float = 0.5) -> bool:
    """Drop this process's compiled programs when its memory mappings near the kernel's limit; True when it did.

    XLA:CPU's JIT maps each compiled program in ~500-800 pieces, and Linux refuses a process more than
    ``vm.max_map_count`` (65,530 by default) mappings: a process that compiles ~90 programs (many table shapes,
    laws or options) would die with "LLVM ERROR: Unable to allocate section memory". Past ``MAPS_SHARE`` of the
    limit, every compiled program is released (``jax.clear_caches``; programs are then compiled or read back
    from the cache again when used): slower, never a crash. Checked at most every ``every`` seconds."""
    now = time.monotonic()
    if now - _MAPS["checked"] < every or not _map_limit():
        return False
    _MAPS["checked"] = now
    try:
        with open("/proc/self/maps", "rb") as fh:
            count = sum(1 for _ in fh)
    except OSError:
        return False
    if count <= MAPS_SHARE * _MAPS["limit"]:
        return False
    _MEMORY.clear()
    jax.clear_caches()
    gc.collect()
    _MAPS["cleared"] += 1
    return True


def program_stats() -> dict[str, int]:
    """How many programs were traced and stored, read back from disk, reused in memory, or run plainly (tests)."""
    return dict(_STATS, released=_MAPS["cleared"])


def clear_memory() -> None:
    """Forget programs held in this process (tests; the files stay)."""
    _MEMORY.clear()
    _UNSUPPORTED.clear()


_code_version()  # now, while the files on disk are the code this process runs
