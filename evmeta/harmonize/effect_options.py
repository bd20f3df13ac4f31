"""The effect-size options an analysis chooses besides the measure: which SMD (metafor's
exact Hedges' g or RevMan's), whether the log ratio of means is bias-corrected, and whether
binary outcomes are put on the SMD scale.

One frozen value carries them from the spec (``[comparisons] smd_variant``,
``rom_correct``, ``binary_to_smd``) through :func:`evmeta.build_comparisons` to every
recomputation of an effect size, so a split control divided again
(:func:`evmeta.harmonize.resplit_shared_controls`) uses the same formulas.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from evmeta.errors import InputError
from evmeta.harmonize.effects import SMD_VARIANTS
from evmeta.harmonize.or_to_smd import BINARY_TO_SMD

#: What :attr:`EffectOptions.binary_to_smd` writes in a converted comparison's
#: ``effect_conversion`` column.
CONVERSION_LABEL = "log odds ratio -> SMD (Hasselblad & Hedges 1995)"


@dataclass(frozen=True)
class EffectOptions:
    """Effect-size options.

    Attributes
    ----------
    smd_variant : {"exact", "revman"}
        ``exact``: Hedges' g with the exact gamma-function correction and metafor's
        variance (default). ``revman``: RevMan 5's Hedges' adjusted g (Deeks & Higgins 2010).
    rom_correct : bool
        Lajeunesse's (2015) bias-corrected log ratio of means with its second-order
        variance (metafor 5's default). Default ``False``: the uncorrected log ratio with
        the first-order variance (metafor before 5.0; Hedges et al. 1999).
    binary_to_smd : {"none", "hasselblad_hedges"}
        Under measure SMD, comparisons with events/totals in both arms (and no means) get
        the log odds ratio converted to the SMD scale, with the small-sample factor of the
        SMD variant in use (see :func:`evmeta.harmonize.or_to_smd.log_odds_ratio_to_smd`).
        ``none`` (default): such comparisons cannot give an SMD and are logged.
    """

    smd_variant: str = "exact"
    rom_correct: bool = False
    binary_to_smd: str = "none"

    def __post_init__(self) -> None:
        if self.smd_variant not in SMD_VARIANTS:
            raise InputError(
                f"smd_variant must be one of {', '.join(SMD_VARIANTS)}, got {self.smd_variant!r}"
            )
        if self.binary_to_smd not in BINARY_TO_SMD:
            raise InputError(
                f"binary_to_smd must be one of {', '.join(BINARY_TO_SMD)}, got {self.binary_to_smd!r}"
            )
        if not isinstance(self.rom_correct, bool):
            raise InputError(f"rom_correct must be true or false, got {self.rom_correct!r}")

    @classmethod
    def from_spec(cls, section: Any) -> EffectOptions:
        """The options of a spec's ``[comparisons]`` section (defaults where it has none)."""
        return cls(
            smd_variant=getattr(section, "smd_variant", "exact"),
            rom_correct=getattr(section, "rom_correct", False),
            binary_to_smd=getattr(section, "binary_to_smd", "none"),
        )

    def as_dict(self) -> dict[str, Any]:
        """For provenance and the comparison settings."""
        return asdict(self)


__all__ = ["CONVERSION_LABEL", "EffectOptions"]
