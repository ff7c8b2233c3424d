"""The options that say where the FLOPs run and what they cost (``plan``, ``report``), and ``--plan``: read and
checked before any work, each bad value one line naming its option."""

from __future__ import annotations

from .common import UsageError


def add_hardware_opts(p) -> None:
    """Where the FLOPs run and what they cost (``plan``, and the report's cost section)."""
    p.add_argument("--accelerator", default="H100", metavar="NAME",
                   help="A100, H100 (default), H200, B200 or TPUv5p (dense bf16 peak and power from the makers' datasheets)")
    p.add_argument("--mfu", type=float, default=None, metavar="SHARE", help="model FLOP utilisation, a share of the peak (default 0.4)")
    p.add_argument("--effective-flops", type=float, default=None, metavar="FLOP/S",
                   help="sustained FLOP/s per accelerator (replaces peak x MFU), e.g. 300e12")
    p.add_argument("--price", type=float, default=None, metavar="USD", help="dollars per accelerator-hour (default 2.0; set yours)")
    p.add_argument("--count", type=float, default=1024, metavar="K", help="accelerators training at once, for wall-clock days (default 1024)")
    p.add_argument("--watts", type=float, default=None, metavar="W", help="power per accelerator (default: the datasheet's)")
    p.add_argument("--pue", type=float, default=1.0, metavar="X", help="data-centre power usage effectiveness for energy (default 1.0)")


def plans_option(args) -> list:
    """``--plan``: the parsed plans, or one line naming the bad one."""
    from ..planning import parse_plan

    try:
        return [parse_plan(t) for t in args.plan]
    except ValueError as err:
        raise UsageError(f"--plan: {err}") from None


def hardware_option(args):
    from ..cost import DEFAULT_MFU, DEFAULT_PRICE, Hardware

    if args.mfu is not None and args.effective_flops is not None:
        raise UsageError("--mfu and --effective-flops both set the throughput; give one")
    try:
        return Hardware(accelerator=args.accelerator, mfu=DEFAULT_MFU if args.mfu is None else args.mfu,
                        price=DEFAULT_PRICE if args.price is None else args.price, count=args.count,
                        effective_flops=args.effective_flops, watts=args.watts, pue=args.pue)
    except ValueError as err:
        first = str(err).split(" ")[0]
        opt = f"--{first.replace('_', '-')}" if first in ("mfu", "price", "count", "effective_flops", "watts", "pue") else "--accelerator"
        raise UsageError(f"{opt}: {err}") from None
