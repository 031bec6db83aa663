"""Exports: a sentence-transformers folder that is also an l3prune folder (``st_folder``), and the pooling
module such a folder names when stock sentence-transformers cannot pool exactly like l3prune (``st_pooling``)."""

from __future__ import annotations

from l3prune.export.st_folder import (PoolingPlan, export_sentence_transformers, plan_export, plan_pooling,
                                      preflight_export, usage_snippet)

__all__ = ["PoolingPlan", "export_sentence_transformers", "plan_export", "plan_pooling", "preflight_export",
           "usage_snippet"]
