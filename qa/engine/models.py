"""The two models every engine runs, and what all engines share.

Both are small BERT encoders fed the same three int64 arrays (``INPUTS``); each
engine runs the same function: the embedder's mean-pooled, unit-length
embeddings, or the reader's start and end logits. ``ModelSpec`` names one
model by its folder and weights' hash (the hash keys every cached file).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa._files import sha256_file
from qa.errors import ModelError

if TYPE_CHECKING:
    import torch

#: Input names of both exported graphs (BERT: ids, mask, segment ids).
INPUTS: tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids")


class EngineError(ModelError):
    """An inference engine could not be built or run (callers fall back to PyTorch)."""


@functools.lru_cache(maxsize=16)
def _file_sha256(path: str, size: int, mtime: float) -> str:
    return sha256_file(path)


def file_sha256(path: Path) -> str:
    """sha256 of a file (cached per path/size/mtime: weights and graphs are large)."""
    st = Path(path).stat()
    return _file_sha256(str(path), st.st_size, st.st_mtime)


@dataclass(frozen=True)
class ModelSpec:
    """One model to run: its folder, its weights' hash and what kind it is.

    ``role`` "embedder": the graph outputs mean-pooled, unit-length embeddings
    (what sentence-transformers' Transformer+Pooling(mean)+Normalize compute);
    ``role`` "reader": start and end logits of a BertForQuestionAnswering.
    """

    role: str
    model_dir: Path
    weights_sha256: str

    def torch_module(self, export: bool = False) -> torch.nn.Module:
        """The model as a torch module taking ``INPUTS`` and returning a tuple of
        tensors (eager attention for export: the ONNX fusions expect it)."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoModelForQuestionAnswering

        kw: dict[str, Any] = {"local_files_only": True, "dtype": torch.float32}
        if export:
            kw["attn_implementation"] = "eager"
        try:
            if self.role == "embedder":
                return _MeanPooled(AutoModel.from_pretrained(str(self.model_dir), **kw)).eval()
            return _QaLogits(AutoModelForQuestionAnswering.from_pretrained(str(self.model_dir), **kw)).eval()
        except Exception as e:  # noqa: BLE001 - any loading failure is the model's problem
            raise ModelError(f"the {self.role} at {self.model_dir} could not be loaded: {e}") from e


def _torch_classes() -> tuple[type[torch.nn.Module], type[torch.nn.Module]]:
    """The wrapper classes, defined on first use: importing this module must not import torch."""
    import torch

    class MeanPooled(torch.nn.Module):
        """BERT + masked mean pooling + L2 normalisation (all-MiniLM-L6-v2's modules)."""

        def __init__(self, bert: torch.nn.Module) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor) -> tuple[torch.Tensor]:
            h = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            v = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return (torch.nn.functional.normalize(v.float(), p=2.0, dim=-1),)

    class QaLogits(torch.nn.Module):
        """BertForQuestionAnswering with plain tuple outputs (start, end)."""

        def __init__(self, qa_model: torch.nn.Module) -> None:
            super().__init__()
            self.qa_model = qa_model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out = self.qa_model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.start_logits, out.end_logits

    return MeanPooled, QaLogits


def _MeanPooled(bert: torch.nn.Module) -> torch.nn.Module:
    return _torch_classes()[0](bert)


def _QaLogits(qa_model: torch.nn.Module) -> torch.nn.Module:
    return _torch_classes()[1](qa_model)


def wrap_reader_model(qa_model: torch.nn.Module) -> torch.nn.Module:
    """A loaded ``BertForQuestionAnswering`` (training's validation) as a reader module."""
    return _QaLogits(qa_model)
