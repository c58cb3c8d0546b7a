"""What the stack must know about an LLM to size it before any GPU exists: its model facts.

A service's model takes them from `PRESETS` (common open models, from each model's config.json on
its hub page: num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim or
hidden_size / num_attention_heads,
max_position_embeddings; parameters from its model card), or declares them, or overrides a
preset's (an fp8 checkpoint of a preset model: `preset` plus `facts: {dtype: fp8}`).
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Dtype = Literal["bf16", "fp16", "fp8", "int4"]
BYTES_PER_PARAM: dict[str, float] = {"bf16": 2, "fp16": 2, "fp8": 1, "int4": 0.5}
GIB = 2**30


class ModelFacts(BaseModel):
    """A model's size and attention shape. Every field is needed to size it; a preset gives them all.
    Bounds far above any model: sizing arithmetic never overflows."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    params_b: float | None = Field(None, gt=0, le=100_000, description="parameters, in billions")
    layers: int | None = Field(None, ge=1, le=100_000, description="transformer layers (num_hidden_layers)")
    kv_heads: int | None = Field(None, ge=1, le=100_000, description="key/value heads (num_key_value_heads)")
    head_dim: int | None = Field(None, ge=1, le=100_000, description="dimension of an attention head")
    dtype: Dtype | None = Field(None, description="weight dtype: bf16, fp16, fp8 or int4 (presets: bf16)")
    max_position: int | None = Field(
        None, ge=16, le=2**31 - 1, description="the model's context length (max_position_embeddings)"
    )
    heads: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="attention heads (num_attention_heads): a tensor parallel size must divide them",
    )

    @property
    def weight_bytes(self) -> float:
        """The whole model's weights (complete facts)."""
        return self.params_b * 1e9 * BYTES_PER_PARAM[self.dtype]

    def missing(self) -> list[str]:
        """What sizing needs and is not known (the heads only check a tensor parallel size)."""
        return [name for name, value in self if value is None and name != "heads"]

    def over(self, base: "ModelFacts") -> "ModelFacts":
        """These facts where set, `base`'s elsewhere."""
        return base.model_copy(update=self.model_dump(exclude_none=True))


def _facts(params_b: float, layers: int, heads: int, kv_heads: int, head_dim: int, max_position: int) -> ModelFacts:
    return ModelFacts(
        params_b=params_b,
        layers=layers,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        dtype="bf16",
        max_position=max_position,
    )


PRESETS: dict[str, ModelFacts] = {
    "qwen2.5-0.5b": _facts(0.49, 24, 14, 2, 64, 32768),
    "qwen2.5-1.5b": _facts(1.54, 28, 12, 2, 128, 32768),
    "qwen2.5-3b": _facts(3.09, 36, 16, 2, 128, 32768),
    "qwen2.5-7b": _facts(7.61, 28, 28, 4, 128, 32768),
    "qwen2.5-14b": _facts(14.7, 48, 40, 8, 128, 32768),
    "qwen2.5-32b": _facts(32.5, 64, 40, 8, 128, 32768),
    "qwen2.5-72b": _facts(72.7, 80, 64, 8, 128, 32768),
    "llama-3.2-1b": _facts(1.24, 16, 32, 8, 64, 131072),
    "llama-3.2-3b": _facts(3.21, 28, 24, 8, 128, 131072),
    "llama-3.1-8b": _facts(8.03, 32, 32, 8, 128, 131072),
    "llama-3.1-70b": _facts(70.6, 80, 64, 8, 128, 131072),
    "llama-3.3-70b": _facts(70.6, 80, 64, 8, 128, 131072),
    "mistral-7b": _facts(7.25, 32, 32, 8, 128, 32768),
    "gemma-2-9b": _facts(9.24, 42, 16, 8, 256, 8192),
    "gemma-2-27b": _facts(27.2, 46, 32, 16, 128, 8192),
}
TUNED_SUFFIXES = ("-instruct", "-it")  # an instruction-tuned variant has its base model's facts


def preset_name(model_id: str) -> str | None:
    """The preset a model id names, as itself or as the instruction-tuned variant of one."""
    name = model_id.lower()
    for suffix in TUNED_SUFFIXES:
        name = name.removesuffix(suffix)
    return name if name in PRESETS else None
