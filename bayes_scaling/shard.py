"""A leading axis (families, chains) spread over devices with ``jax.shard_map``: how many devices, padding
the axis to a multiple of them (the last item repeated) and trimming the padding off the results. Used by
batch point fits, batch posteriors and one posterior's chains alike."""

from __future__ import annotations

import jax
import numpy as np

__all__ = ["device_count", "pad_to_multiple", "trim", "sharded"]


def device_count(items: int, requested: int | None = None) -> int:
    """Devices to spread ``items`` over: ``requested`` (default every device of the default backend), at
    most one item per device, at least 1."""
    n = len(jax.devices()) if requested is None else int(requested)
    return max(1, min(n, int(items), len(jax.devices())))


def pad_to_multiple(tree, multiple: int):
    """``(tree, pad)``: every leaf's leading axis padded to a multiple of ``multiple`` by repeating its last item.
    Leaves come back as NumPy arrays (host memory, on no device yet), which a sharded program spreads itself."""
    tree = jax.tree_util.tree_map(np.asarray, tree)
    size = int(jax.tree_util.tree_leaves(tree)[0].shape[0])
    pad = (-size) % int(multiple)
    if pad:
        tree = jax.tree_util.tree_map(lambda a: np.concatenate([a, np.repeat(a[-1:], pad, axis=0)], axis=0), tree)
    return tree, pad


def trim(tree, size: int):
    """Every leaf's leading axis cut back to ``size`` (the padding dropped), as NumPy arrays."""
    return jax.tree_util.tree_map(lambda a: np.asarray(a)[:size], tree)


def sharded(fn, num_devices: int, axis: str, split: tuple[bool, ...]):
    """``fn`` jitted with ``jax.shard_map`` over the first ``num_devices`` devices: the arguments marked True in
    ``split`` are divided along their leading axis, the others copied to every device; results are joined
    along the leading axis."""
    from jax.sharding import Mesh
    from jax.sharding import PartitionSpec as P

    mesh = Mesh(np.array(jax.devices()[:num_devices]), (axis,))
    in_specs = tuple(P(axis) if s else P() for s in split)
    return jax.jit(jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=P(axis), check_vma=False))
