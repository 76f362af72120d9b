"""Synthetic Hugging Face listing pages for hubs of any size, built page by page.

Page ``p`` (models ``p*size .. p*size+size-1``) depends only on ``(n, seed, size, p)``, so a
replica can build any page on demand, in any order, without holding the hub in memory. Models
come from ``tests.replicas.huggingface.synthetic_model`` plus the heavier fields real listings
carry with ``expand[]`` (many ``siblings``, tokenizer config, richer card data): about 2 KB of JSON
each, like the Hub's listing items (1.5-7 KB for popular models, less for the long tail).
"""

from __future__ import annotations

import json
import random

from tests.replicas.huggingface import synthetic_model

PAGE_SIZE = 1000

_FILES = ["pytorch_model.bin", "tf_model.h5", "flax_model.msgpack", "tokenizer.json", "vocab.txt",
          "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
          "training_args.bin", "merges.txt", "vocab.json", "onnx/model.onnx", "onnx/config.json",
          "model.safetensors.index.json", "preprocessor_config.json", "added_tokens.json"]


def owners(n: int) -> int:
    return max(1, n // 20) + 1


def page_count(n: int, size: int = PAGE_SIZE) -> int:
    return max(1, -(-n // size))


def hub_model(rng: random.Random, i: int, n: int) -> dict:
    model = synthetic_model(rng, i, owners(n))
    shards = rng.randrange(0, 12)
    files = [f for f in _FILES if rng.random() < 0.6]
    files += [f"model-{k + 1:05d}-of-{shards:05d}.safetensors" for k in range(shards)]
    model["siblings"] += [{"rfilename": f} for f in files]
    model["config"]["tokenizer_config"] = {
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": None,
        "chat_template": None if rng.random() < 0.7 else "{% for m in messages %}{{ m['content'] }}{% endfor %}",
    }
    model["cardData"].update(
        tags=model["tags"][3:5], metrics=rng.sample(["accuracy", "f1", "bleu", "wer", "rouge"], 2),
        pipeline_tag=model["pipeline_tag"], library_name=model["library_name"],
    )
    return model


def page_models(p: int, n: int, seed: int = 1, size: int = PAGE_SIZE) -> list[dict]:
    rng = random.Random(seed * 1_000_003 + p)
    return [hub_model(rng, i, n) for i in range(p * size, min(n, (p + 1) * size))]


def page_bytes(p: int, n: int, seed: int = 1, size: int = PAGE_SIZE) -> bytes:
    return json.dumps(page_models(p, n, seed, size), separators=(",", ":")).encode()
