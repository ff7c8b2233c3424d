"""What compute costs: FLOPs to accelerator-hours, days on a cluster, dollars, PF-days and energy.

    hours  = C / (peak x MFU) / 3600        accelerator-hours (GPU-hours), C in FLOPs
    days   = hours / count / 24             wall-clock days on ``count`` accelerators (perfect scaling assumed)
    dollars = hours x price                 price per accelerator-hour
    PF-days = C / 8.64e19                   one PF-day is 1e15 FLOP/s for a day (METHODS §5)
    energy = hours x watts x PUE / 1000     kWh at the accelerator's rated power, times the data centre's PUE

``peak`` is the accelerator's dense (no sparsity) bf16 tensor throughput from its maker's datasheet
(:data:`ACCELERATORS`); ``MFU`` (model FLOP utilisation: the model's 6ND FLOPs over the time, as a share of peak)
defaults to :data:`DEFAULT_MFU` = 0.4: large dense-transformer runs report 38-46% (PaLM 540B: 46.2% on TPU v4,
Chowdhery et al. 2022, Table 3; Llama 3 405B: 38-43% on H100 in bf16, Dubey et al. 2024, Table 4), and a first run
on a new cluster rarely beats that. Set it from your own profiler when you have one, or give the throughput directly
(``effective_flops``: FLOP/s per accelerator that the run really sustains, as in "300 TFLOP/s effective").
The default price, :data:`DEFAULT_PRICE` = $2 per accelerator-hour, is a round number for a rented H100-class
GPU, stated so that the dollars are never a hidden assumption; always set your own (``price``).

Every function takes arrays of FLOPs (posterior draws) as well as numbers, so "compute to reach loss 2.0" becomes
an interval of dollars and days by pushing its draws through.

>>> hw = Hardware(effective_flops=300e12, price=2.0)          # the seed's worked example: 7B on 2T tokens
>>> c = costs(6 * 7e9 * 2e12, hw)
>>> f"{c['hours']:.0f} GPU-hours, ${c['dollars']:,.0f}"
'77778 GPU-hours, $155,556'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Accelerator", "ACCELERATORS", "Hardware", "costs", "flops_for_dollars", "flops_for_days", "get_accelerator",
           "DEFAULT_MFU", "DEFAULT_PRICE", "PF_DAY"]

#: FLOPs in one PF-day (1e15 FLOP/s for 86400 s)
PF_DAY = 1e15 * 86400.0
DEFAULT_MFU = 0.4
DEFAULT_PRICE = 2.0


@dataclass(frozen=True)
class Accelerator:
    """One accelerator: dense bf16 peak (FLOP/s), rated board power (W; None where the maker publishes none)."""

    name: str
    peak_flops: float
    watts: float | None
    source: str


#: the accelerators the CLI knows by name (case-insensitive); peak is dense bf16 (half the "with sparsity" figure)
ACCELERATORS = {a.name.lower(): a for a in (
    Accelerator("A100", 312e12, 400.0,
                "NVIDIA A100 datasheet (SXM4 80GB): BF16 Tensor Core 312 TFLOPS dense (624 with sparsity), max TDP 400 W"),
    Accelerator("H100", 989e12, 700.0,
                "NVIDIA H100 datasheet (SXM5): BF16 Tensor Core 1,979 TFLOPS with sparsity, so 989 dense; max TDP up to 700 W"),
    Accelerator("H200", 989e12, 700.0,
                "NVIDIA H200 datasheet (SXM): BF16 Tensor Core 1,979 TFLOPS with sparsity, so 989 dense; max TDP up to 700 W"),
    Accelerator("B200", 2.25e15, 1000.0,
                "NVIDIA HGX B200 datasheet: per GPU FP16/BF16 4.5 PFLOPS with sparsity, so 2.25 dense; up to 1,000 W"),
    Accelerator("TPUv5p", 459e12, None,
                "Google Cloud TPU v5p documentation: peak compute per chip (bf16) 459 TFLOPS; Google publishes no per-chip "
                "power, so energy needs watts= (the CLI's --watts)"),
)}


def get_accelerator(name: str) -> Accelerator:
    """The accelerator called ``name`` (case, spaces, hyphens and underscores ignored: "tpu-v5p" is TPUv5p), or a
    ``ValueError`` listing the known ones."""
    key = str(name).lower().replace("-", "").replace("_", "").replace(" ", "")
    if key not in ACCELERATORS:
        raise ValueError(f"unknown accelerator {name!r}; one of {', '.join(a.name for a in ACCELERATORS.values())} "
                         "(or give the sustained throughput with effective_flops / --effective-flops)")
    return ACCELERATORS[key]


def _positive(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, not {value!r}") from None
    if not (np.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a positive, finite number, not {value!r}")
    return v


@dataclass(frozen=True)
class Hardware:
    """Where the FLOPs run and what they cost. ``effective_flops`` (FLOP/s per accelerator actually sustained), when
    given, replaces ``peak x mfu``; ``watts`` replaces the accelerator's rated power; ``count`` accelerators share
    the work (for wall-clock days); ``pue`` multiplies the energy (1.0: the accelerators alone)."""

    accelerator: str = "H100"
    mfu: float = DEFAULT_MFU
    price: float = DEFAULT_PRICE
    count: int = 1
    effective_flops: float | None = None
    watts: float | None = None
    pue: float = 1.0

    def __post_init__(self):
        get_accelerator(self.accelerator)
        mfu = _positive(self.mfu, "mfu")
        if mfu > 1:
            raise ValueError(f"mfu is a share of the peak, in (0, 1]; not {self.mfu!r}")
        _positive(self.price, "price")
        if _positive(self.count, "count") != int(self.count):
            raise ValueError(f"count (accelerators) must be a whole number, not {self.count!r}")
        for name in ("effective_flops", "watts"):
            if getattr(self, name) is not None:
                _positive(getattr(self, name), name)
        if _positive(self.pue, "pue") < 1:
            raise ValueError(f"pue (data-centre power over IT power) is at least 1, not {self.pue!r}")

    @property
    def spec(self) -> Accelerator:
        return get_accelerator(self.accelerator)

    @property
    def flops_per_second(self) -> float:
        """Sustained FLOP/s of one accelerator: ``effective_flops``, else peak x MFU."""
        return float(self.effective_flops) if self.effective_flops is not None else self.spec.peak_flops * float(self.mfu)

    @property
    def power(self) -> float | None:
        """Watts per accelerator (given, else rated), or None where unknown."""
        return float(self.watts) if self.watts is not None else self.spec.watts

    def describe(self) -> str:
        """One line: what the numbers assume."""
        rate = (f"{self.flops_per_second / 1e12:.4g} TFLOP/s sustained per accelerator" if self.effective_flops is not None
                else f"{self.spec.name} at {self.mfu:.0%} MFU of {self.spec.peak_flops / 1e12:.4g} TFLOP/s dense bf16 "
                     f"= {self.flops_per_second / 1e12:.4g} TFLOP/s")
        watts = f"{self.power:g} W each" if self.power is not None else "power unknown (give watts)"
        return f"{rate}; {int(self.count)} accelerator(s); ${float(self.price):g} per accelerator-hour; {watts}" + (
            f", PUE {self.pue:g}" if self.pue != 1 else "")


def costs(flops, hw: Hardware) -> dict:
    """``hours`` (accelerator-hours), ``days`` (wall clock on ``hw.count``), ``dollars``, ``pf_days`` and ``kwh``
    (NaN where the power is unknown) for ``flops`` (a number or an array: floats back for a number)."""
    c = np.asarray(flops, float)
    hours = c / hw.flops_per_second / 3600.0
    out = {"flops": c, "hours": hours, "days": hours / int(hw.count) / 24.0, "dollars": hours * float(hw.price),
           "pf_days": c / PF_DAY,
           "kwh": hours * (hw.power if hw.power is not None else np.nan) * float(hw.pue) / 1000.0}
    return {k: float(v) for k, v in out.items()} if np.ndim(flops) == 0 else out


def flops_for_dollars(dollars, hw: Hardware):
    """The training compute (FLOPs) that ``dollars`` buy on ``hw``."""
    return np.asarray(dollars, float) / float(hw.price) * 3600.0 * hw.flops_per_second


def flops_for_days(days, hw: Hardware):
    """The training compute (FLOPs) ``hw.count`` accelerators deliver in ``days`` of wall-clock time."""
    return np.asarray(days, float) * 86400.0 * int(hw.count) * hw.flops_per_second
