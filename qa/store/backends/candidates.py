"""Candidate fusion moved to ``qa.fusion`` (all score fusion is there); kept as an alias for old imports."""

from qa.fusion import DenseStats, candidate_hybrid, fuse, union_candidates

__all__ = ["DenseStats", "candidate_hybrid", "fuse", "union_candidates"]
