"""Run tables: load and validate CSV, Parquet or a pandas DataFrame into :class:`Runs`.

A run table has one row per training run. Roles and the default column names looked for:

=============  ===================  ===========================================
role           default column       meaning
=============  ===================  ===========================================
``N``          ``N``                parameters
``D``          ``D``                training tokens
``C``          ``C``                training FLOPs
``loss``       ``loss``             final loss (nats/token), or the target y
``U``          ``U``                unique tokens (optional; data-constrained law)
``family``     (none)               run family label (optional)
``batch_size`` (none)               batch size (optional)
``steps``      (none)               optimizer steps (optional)
=============  ===================  ===========================================

Either D or C may be missing: the other is filled with the convention C = 6ND, and :attr:`Runs.notes`
says so. Bad input raises ``ValueError`` naming the source, the column and the first offending row
(rows are counted from 1 after the header, as a spreadsheet shows data rows).

>>> import pandas as pd
>>> runs = load_runs(pd.DataFrame({"N": [1e8, 2e8], "C": [6e17, 2.4e18], "loss": [3.1, 2.9]}))
>>> runs.D.tolist(), runs.notes
([1000000000.0, 2000000000.0], ('D = C / (6 N) (column D absent; convention C = 6ND)',))
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .defaults import FLOPS_CONVENTION, compute_of, tokens_of

__all__ = ["Runs", "load_runs", "read_table", "FLOPS_CONVENTION"]

_NUMERIC_ROLES = ("N", "D", "C", "loss", "U", "batch_size", "steps")
_POSITIVE_ROLES = ("N", "D", "C", "loss", "U", "batch_size", "steps")


@dataclass(frozen=True, eq=False)
class Runs:
    """Validated arrays of one run table (one family or several, see ``family``).

    Every array has shape ``(num_runs,)``; optional roles are ``None`` when absent.
    ``rows`` holds each run's row number in the source (1-based data rows) for messages.
    """

    N: np.ndarray | None
    D: np.ndarray | None
    C: np.ndarray | None
    loss: np.ndarray
    U: np.ndarray | None = None
    family: np.ndarray | None = None
    batch_size: np.ndarray | None = None
    steps: np.ndarray | None = None
    source: str = "<DataFrame>"
    columns: Mapping[str, str] = field(default_factory=dict)
    rows: np.ndarray | None = None
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.loss.shape[0])

    @property
    def num_runs(self) -> int:
        return len(self)

    def column(self, role: str) -> np.ndarray:
        """The array for a role, or a ``ValueError`` saying which column the table lacks."""
        value = getattr(self, role, None) if role in _NUMERIC_ROLES or role == "family" else None
        if value is None:
            col = self.columns.get(role, role)
            raise ValueError(f"{self.source}: this law needs {role!r} but the table has no column {col!r} for it")
        return value

    def inputs(self, names) -> dict[str, np.ndarray]:
        """The arrays a law needs, keyed by input name."""
        return {name: self.column(name) for name in names}

    def select(self, mask) -> Runs:
        """A new :class:`Runs` holding the runs where ``mask`` is true (or the given indices)."""
        idx = np.arange(len(self))[np.asarray(mask)]
        kw = {r: (None if getattr(self, r) is None else getattr(self, r)[idx]) for r in _NUMERIC_ROLES + ("family",)}
        rows = None if self.rows is None else self.rows[idx]
        return Runs(**kw, source=self.source, columns=dict(self.columns), rows=rows, notes=self.notes)

    def families(self) -> list[tuple[str, Runs]]:
        """``(family, runs)`` for every family, in order of first appearance (one sort, not a scan per family)."""
        if self.family is None:
            return []
        names, first, inverse = np.unique(self.family, return_index=True, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.cumsum(np.bincount(inverse, minlength=len(names)))
        groups = np.split(order, bounds[:-1])
        return [(_plain(names[g]), self.select(groups[g])) for g in np.argsort(first)]

    def family_sizes(self) -> list[tuple[str, int]]:
        """``(family, number of runs)`` for every family, in order of first appearance, without splitting the table."""
        if self.family is None:
            return []
        names, first, counts = np.unique(self.family, return_index=True, return_counts=True)
        return [(_plain(names[g]), int(counts[g])) for g in np.argsort(first)]

    def describe(self) -> str:
        parts = [f"{self.source}: {len(self)} runs"]
        for role in ("N", "D", "C", "loss"):
            a = getattr(self, role)
            if a is not None:
                parts.append(f"{role} in [{a.min():.3g}, {a.max():.3g}]")
        return "; ".join(parts) + "".join(f"\n  note: {n}" for n in self.notes)


def _plain(x):
    """A NumPy scalar as the Python value it holds."""
    return x.item() if hasattr(x, "item") else x


_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "'|'"}


def read_table(source, *, sep: str | None = None, name: str | None = None):
    """Read a run table: ``(df, name, from_file)``. ``source`` is a path (CSV; ``.tsv``/``.tab``: tab-separated;
    ``.parquet``/``.pq``) or a DataFrame (``name`` names it in messages, default ``<DataFrame>``). ``sep``: the
    CSV delimiter; by default a comma, and a file whose header reads as one column holding semicolons, tabs or
    '|' is read again with that delimiter. Errors are one-line ``ValueError``s naming the file."""
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        return source, name or "<DataFrame>", False
    try:
        path = os.fspath(source)
    except TypeError:
        raise ValueError(f"a run table must be a file path or a pandas DataFrame, not {type(source).__name__}") from None
    if not os.path.exists(path):
        raise ValueError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a folder, not a table file")
    ext = os.path.splitext(path)[1].lower()
    if ext in (".parquet", ".pq"):
        return _read_parquet(path), path, True
    try:
        df = pd.read_csv(path, sep=sep if sep is not None else ("\t" if ext in (".tsv", ".tab") else ","))
        if sep is None and df.shape[1] == 1:
            header = str(df.columns[0])
            found = [d for d in _DELIMITERS if d in header]
            if found:  # one column whose name holds another delimiter: the file uses that one
                df = pd.read_csv(path, sep=found[0])
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: the file is empty (no header, no rows)") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: cannot read as a table: not text (a binary file? Parquet files end in .parquet)") from None
    except Exception as err:  # parser errors: say which file, keep the parser's reason
        hint = "" if sep is not None else " (if it is not comma-separated, give the delimiter: --sep ';' or sep=';')"
        raise ValueError(f"{path}: cannot read as a table: {str(err).splitlines()[0]}{hint}") from None
    return df, path, True


def _read_parquet(path):
    import pandas as pd

    try:
        return pd.read_parquet(path)
    except ImportError:
        missing = True
    except Exception as err:
        missing = False
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
    if missing:
        raise ValueError(f"{path}: reading Parquet needs pyarrow: pip install pyarrow (or save the table as CSV)")
    raise ValueError(f"{path}: cannot read as a Parquet table: {reason}")


def columns_text(df) -> str:
    """The table's column names, quoted so that stray spaces show: ``'N', 'D ', 'loss'``."""
    return ", ".join(repr(str(c)) for c in df.columns)


def missing_column(name: str, col: str, df, role: str | None = None) -> ValueError:
    """The error for a column the table lacks, naming the file, the column (quoted) and the columns there are,
    with the near miss where only spaces or case differ."""
    near = [str(c) for c in df.columns if str(c).strip().lower() == str(col).strip().lower()]
    hint = f" (did you mean {near[0]!r}? the names differ in spaces or case)" if near else ""
    what = f" (for {role})" if role else ""
    return ValueError(f"{name}: column {col!r}{what} not found{hint}; the columns are: {columns_text(df)}")


def _row_label(df, i: int, from_file: bool) -> str:
    if from_file:
        return f"row {i + 1}"
    label = df.index[i]
    label = label.item() if hasattr(label, "item") else label  # numpy scalar -> plain Python for the message
    return f"row {i + 1} (index {label!r})"


def load_runs(
    source,
    *,
    N: str | None = "N",
    D: str | None = "D",
    C: str | None = "C",
    loss: str = "loss",
    U: str | None = "U",
    family: str | list[str] | None = None,
    batch_size: str | None = None,
    steps: str | None = None,
    required: tuple[str, ...] = ("loss",),
    sep: str | None = None,
    name: str | None = None,
) -> Runs:
    """Load a run table (CSV/TSV/Parquet path or DataFrame) into validated :class:`Runs`.

    Keyword arguments map roles to column names. ``N``, ``D``, ``C`` and ``U`` default to columns of
    those names and are optional when absent unless listed in ``required``; a column named explicitly
    (anything other than the default) must exist. ``family`` may be several columns, joined with "/".
    ``sep`` is the CSV delimiter (see :func:`read_table`); ``name`` names a DataFrame in messages.
    """
    for role, col in (("N", N), ("D", D), ("C", C), ("loss", loss), ("U", U), ("batch_size", batch_size), ("steps", steps)):
        if col is not None and not isinstance(col, str):
            raise ValueError(f"{role}= must name a column (a string), not {col!r}")
    if loss is None:
        raise ValueError("loss= must name the column of losses (or of the quantity the law describes)")
    if family is not None and not (isinstance(family, str) or (isinstance(family, (list, tuple)) and family
                                                              and all(isinstance(c, str) for c in family))):
        raise ValueError(f"family= must name a column or a list of columns, not {family!r}")
    df, name, from_file = read_table(source, sep=sep, name=name)
    defaults = {"N": "N", "D": "D", "C": "C", "U": "U"}
    mapping = {"N": N, "D": D, "C": C, "loss": loss, "U": U, "batch_size": batch_size, "steps": steps}
    columns: dict[str, str] = {}
    for role, col in mapping.items():
        if col is None:
            continue
        if col in df.columns:
            columns[role] = col
        elif role in required or col != defaults.get(role):
            raise missing_column(name, col, df, role)
    if len(df) == 0:
        raise ValueError(f"{name}: the table is empty (no runs)")

    arrays: dict[str, np.ndarray] = {}
    for role, col in columns.items():
        arrays[role] = _numeric_column(df, col, name, from_file, positive=role in _POSITIVE_ROLES)

    notes = []
    if "D" not in arrays and "C" in arrays and "N" in arrays:
        arrays["D"] = tokens_of(arrays["C"], arrays["N"])
        notes.append(f"D = C / (6 N) (column {D or 'D'} absent; convention {FLOPS_CONVENTION})")
    elif "C" not in arrays and "D" in arrays and "N" in arrays:
        arrays["C"] = compute_of(arrays["N"], arrays["D"])
        notes.append(f"C = 6 N D (column {C or 'C'} absent; convention {FLOPS_CONVENTION})")

    fam = None
    if family is not None:
        fam_cols = [family] if isinstance(family, str) else list(family)
        missing = [c for c in fam_cols if c not in df.columns]
        if missing:
            raise missing_column(name, missing[0], df, "family")
        fam = df[fam_cols].astype(str).agg("/".join, axis=1).to_numpy()
        columns["family"] = "/".join(fam_cols)

    _warn_duplicates(df, list(columns.values()) if fam is None else list(df.columns), name, from_file)
    return Runs(
        N=arrays.get("N"),
        D=arrays.get("D"),
        C=arrays.get("C"),
        loss=arrays["loss"],
        U=arrays.get("U"),
        family=fam,
        batch_size=arrays.get("batch_size"),
        steps=arrays.get("steps"),
        source=name,
        columns=columns,
        rows=np.arange(1, len(df) + 1),
        notes=tuple(notes),
    )


def _numeric_column(df, col: str, name: str, from_file: bool, *, positive: bool) -> np.ndarray:
    import pandas as pd

    raw = df[col]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    bad_text = np.isnan(values) & raw.notna().to_numpy() & ~raw.astype(str).str.strip().str.lower().isin(["nan", "inf", "-inf"]).to_numpy()
    if bad_text.any():
        i = int(np.argmax(bad_text))
        raise ValueError(f"{name}: column {col!r}, {_row_label(df, i, from_file)}: {raw.iloc[i]!r} is not a number")
    nonfinite = ~np.isfinite(values)
    if nonfinite.any():
        i = int(np.argmax(nonfinite))
        v = raw.iloc[i]
        shown = "missing" if pd.isna(v) else f"{v if isinstance(v, str) else format(float(v), 'g')} is not finite"
        raise ValueError(f"{name}: column {col!r}, {_row_label(df, i, from_file)}: value {shown}")
    if positive and (values <= 0).any():
        i = int(np.argmax(values <= 0))
        raise ValueError(f"{name}: column {col!r}, {_row_label(df, i, from_file)}: {values[i]:g} must be positive")
    return values


def _warn_duplicates(df, cols, name, from_file) -> None:
    dup = df.duplicated(subset=cols, keep=False).to_numpy()
    if dup.any():
        idx = np.flatnonzero(dup)
        shown = ", ".join(_row_label(df, int(i), from_file) for i in idx[:4]) + (" ..." if len(idx) > 4 else "")
        warnings.warn(f"{name}: {len(idx)} runs are exact duplicates of another ({shown}); all are kept", stacklevel=3)


def as_runs(data: Any, **kwargs) -> Runs:
    """Accept :class:`Runs`, a DataFrame or a path."""
    return data if isinstance(data, Runs) else load_runs(data, **kwargs)
