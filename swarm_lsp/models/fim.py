"""Fill-in-the-middle prompts, when a model's vocabulary declares FIM tokens.

Models name their FIM tokens differently; a family is used only when all three of its tokens
are single special tokens in the model's own vocabulary. Otherwise the caller continues the
prefix, with no suffix.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class FimTokens:
    prefix: str
    suffix: str
    middle: str

    def prompt(self, preamble: str, prefix: str, suffix: str) -> str:
        """Prefix-suffix-middle order; stable preamble first so the KV cache is reused."""
        return f"{self.prefix}{preamble}{prefix}{self.suffix}{suffix}{self.middle}"


FAMILIES = (
    FimTokens("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),  # Qwen2.5-Coder, CodeGemma
    FimTokens("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),  # StarCoder, SmolLM
    FimTokens("<|fim▁begin|>", "<|fim▁hole|>", "<|fim▁end|>"),  # DeepSeek-Coder
    FimTokens("<PRE>", "<SUF>", "<MID>"),  # Code Llama
)


def detect(is_single_special_token: Callable[[str], bool]) -> FimTokens | None:
    """The first family whose three tokens are each one special token of the vocabulary."""
    for family in FAMILIES:
        if all(is_single_special_token(t) for t in (family.prefix, family.suffix, family.middle)):
            return family
    return None


def continuation_prompt(preamble: str, prefix: str) -> str:
    """The prompt for a model without FIM: context, then the text before the cursor."""
    return f"{preamble}{prefix}"
