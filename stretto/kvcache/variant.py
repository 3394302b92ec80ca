"""A KV-cache variant: which compression press at which ratio; with a model it is a physical operator."""

from __future__ import annotations

from dataclasses import dataclass

from stretto.backends.base import operator_identity
from stretto.errors import CacheError

# Presses that held up on our measurements (DESIGN.md section 6), by kvpress class name.
# SnapKV and LagKV flip scores at high ratios and ObservedAttention needs eager attention: left out on purpose.
PRESSES: dict[str, str] = {
    "none": "",
    "expected_attention": "ExpectedAttentionPress",
    "knorm": "KnormPress",
    "tova": "TOVAPress",
    "streaming_llm": "StreamingLLMPress",
}


@dataclass(frozen=True)
class KVVariant:
    """(press, ratio); ratio 0 means the full, uncompressed cache whatever the press."""

    press: str = "none"
    ratio: float = 0.0

    def __post_init__(self) -> None:
        if self.press not in PRESSES:
            raise CacheError(f"unknown press '{self.press}'; choose one of {sorted(PRESSES)}")
        if not isinstance(self.ratio, int | float) or not 0.0 <= float(self.ratio) < 1.0:
            raise CacheError(f"compression ratio {self.ratio!r} is outside [0, 1)")
        if self.press == "none" and self.ratio:
            raise CacheError(f"press 'none' cannot compress (ratio {self.ratio}); name a press")
        if self.ratio == 0 and self.press != "none":
            object.__setattr__(self, "press", "none")  # every press at ratio 0 is the same full cache

    @property
    def compressed(self) -> bool:
        return self.ratio > 0

    @property
    def name(self) -> str:
        return f"{self.press}@{self.ratio:.2f}"

    def operator_identity(self, model_identity: str) -> str:
        """Stable identity of the physical operator (model weights x press x ratio)."""
        return operator_identity(model_identity, self.press, self.ratio)


def make_press(variant: KVVariant):
    """The kvpress object for a compressed variant (kvpress is imported only when compression is used)."""
    import kvpress

    return getattr(kvpress, PRESSES[variant.press])(compression_ratio=float(variant.ratio))
