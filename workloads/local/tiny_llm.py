"""A tiny Llama with random weights and a locally trained tokenizer, for running the LLM payloads
on a laptop CPU and in tests: nothing is downloaded, and the same seed gives the same files.

`SMALL` is the same recipe 40 times larger, for benchmarks of caching: the tiny model computes a
2,000-token prompt in milliseconds, so no cache could shorten its time to first token; at this size
prefill costs seconds on a laptop CPU, as a long prompt costs a real model on a GPU.

    python -m workloads.local.tiny_llm [DIR]   # prints the model directory
"""

import json
import sys
from pathlib import Path

from workloads.local import BUILD

VERSION = 1  # bump when the recipe changes; the cache is keyed on it
# (hidden size, MLP size, layers, attention heads, KV heads): head size 32, which vLLM's CPU attention supports
TINY = (128, 256, 2, 4, 4)
SMALL = (512, 1536, 8, 16, 4)
DEFAULT_DIR = BUILD / "models" / "tiny-llama"
SMALL_DIR = BUILD / "models" / "small-llama"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
CORPUS = [
    "Ray Serve scales model serving from a laptop to a cluster.",
    "KubeRay runs Ray clusters on Kubernetes with autoscaling workers.",
    "Dynamic resource allocation hands GPUs to pods through resource claims.",
    "The quick brown fox jumps over the lazy dog while the model answers questions.",
    "Batch inference streams rows through preprocessing and model stages.",
] * 20


def ensure(directory: Path = DEFAULT_DIR, shape: tuple[int, int, int, int, int] = TINY) -> Path:
    """The model directory, created on first use (about a second on 2 CPUs)."""
    marker = directory / "rayplane-tiny-llm.json"
    recipe = {"version": VERSION, "shape": list(shape)}
    if marker.exists() and json.loads(marker.read_text()) == recipe:
        return directory
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    special = ["<s>", "</s>", "<pad>", "<|system|>", "<|user|>", "<|assistant|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=512, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(directory)

    torch.manual_seed(0)
    hidden, mlp, layers, heads, kv_heads = shape
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=hidden,
        intermediate_size=mlp,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=2048,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        torch_dtype="float32",
    )
    LlamaForCausalLM(config).save_pretrained(directory, safe_serialization=True)
    marker.write_text(json.dumps(recipe))
    return directory


if __name__ == "__main__":
    print(ensure(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR))
