"""Phases 3–5 settings: planning, the generation loop's caps, free-text handling (`generation:`).

Light on purpose (pydantic only): configuration imports these without loading the planner.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MIN_CONFIDENCE = 0.5
"""Below this confidence the issue's author is asked a question instead of the bot guessing."""


class PlanOptions(BaseModel):
    """How many candidates to ask for, how to weigh them, and when a person must approve."""

    model_config = ConfigDict(extra="forbid")

    candidates: int = Field(default=3, ge=0, le=8)
    """Model-proposed sequences, besides the spec's own operations."""
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    """For every candidate after the first (which is greedy)."""
    seed: int = 0
    files_weight: float = 0.05
    impact_weight: float = 0.1
    naming_weight: float = 1.0
    approval_files: int = Field(default=8, ge=1)
    """A plan touching more files than this waits for approval."""
    approval_callers: int = Field(default=25, ge=1)
    """A plan changing code with more callers than this waits for approval."""


class CollaborationLimits(BaseModel):
    """Caps on one job's generation loop (`generation:` settings)."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=6, ge=1)
    """Code versions checked, over all plans (a syntax check counts)."""
    max_attempts_per_plan: int = Field(default=3, ge=1)
    max_plans: int = Field(default=3, ge=1)
    max_tokens: int = Field(default=8000, ge=1)
    """Tokens generated in all (approximate: four characters a token); a call that could overrun is not made."""
    max_seconds: float = Field(default=900.0, gt=0)
    body_tokens: int = Field(default=256, ge=16)
    """Room for a new function body."""
    temperature: float = Field(default=0.2, ge=0.0, le=2.0)


class LocateSettings(BaseModel):
    """How `locate` ranks code for an issue (`generation.locate:`); every switch is one fix whose
    contribution docs/LOCATE.md measures (benchmarks/bench_swe_locate.py)."""

    model_config = ConfigDict(extra="forbid")

    embedder: Literal["auto", "minilm", "minilm-int8", "static", "none"] = "auto"
    """The dense signal. `auto`: MiniLM when the project's own code has at most
    `minilm_max_files` Python files (its CPU indexing time stays affordable), else the static embedding."""
    minilm_max_files: int = Field(default=300, ge=0)
    own_package: bool = True
    """Rank only the project's own package: tests, vendored code, docs, examples, benchmarks and
    files outside any package (setup.py) are left out before any ranking is cut."""
    rrf_k: float = Field(default=4.0, gt=0)
    """Reciprocal-rank fusion constant: small, so that a first place counts for much more than a tenth."""
    function_bm25: bool = True
    """A file's lexical rank is its best chunk's BM25 (not BM25 over the whole file)."""
    frames: bool = True
    """Also read pytest-style frames (`pkg/mod.py:352: in func`) and absolute or Windows paths."""
    literals: bool = True
    """Match quoted messages, error messages and `--flags` exactly against the code's string literals."""
    unique_query_words: bool = False
    """Count each query word once (meant to keep long logs from dominating). Off: on the first 21
    dev-set issues, counting repeats found more (file Acc@1 0.67 against 0.48; docs/PERFORMANCE.md)."""
    graph: bool = True
    """Personalized PageRank over calls, imports and containment as a signal."""
    depth: int = Field(default=100, ge=10)
    """How far down each single ranking is read before fusion."""


class GenerationSettings(BaseModel):
    """How free-text issues and generated code are handled (`generation:` in config.yaml)."""

    model_config = ConfigDict(extra="forbid")

    localise: Literal["locate", "overlap"] = "locate"
    """`locate`: BM25 + MiniLM + call graph (diffusellm.pipeline.locate.query); `overlap`: identifier overlap
    with the knowledge graph only (no embedding model)."""
    locate: LocateSettings = LocateSettings()
    normalise: Literal["rank", "draft"] = "rank"
    """How a free-text issue becomes a spec when no YAML block or plain refactor rule applies. `rank`:
    score each change kind on the likeliest targets (wording, names, localiser order, the model's
    log-likelihood) and fill in the parameters the issue states; one operation. `draft`: the model
    writes the whole spec as schema-constrained JSON (several operations; needs a capable model)."""
    normalise_model_weight: float = Field(default=0.35, ge=0.0, le=10.0)
    """With `rank`: how much the model's preference counts against the issue's wording and names
    (0 ignores the model; raise it for a capable model)."""
    context_tokens: int = Field(default=1500, ge=100)
    """Source of the localised candidates packed into prompts."""
    min_confidence: float = Field(default=MIN_CONFIDENCE, ge=0.0, le=1.0)
    """Below this the issue's author is asked a question instead of the bot guessing."""
    stop_for_approval: bool = False
    """Stop before generating when the best plan needs a person's approval."""
    plan: PlanOptions = PlanOptions()
    limits: CollaborationLimits = CollaborationLimits()
