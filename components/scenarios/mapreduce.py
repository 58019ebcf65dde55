"""``scenario=mapreduce``: TaPS's word count over generated text, every word counted.

The text is generated from a seeded Zipf distribution over a random vocabulary, one document
per file. The files are cut into ``map_tasks`` chunks, each map task counts the words of its
chunk (the chunk's text is the task's argument, so the data flow moves it), and one reduce task
merges the counts. TaPS's ``_chunkify`` drops the last file; here the total is checked against
the words generated, and every word's count against a count made on the client.
"""

from __future__ import annotations

import string
from collections import Counter
from typing import ClassVar, Literal, Self

import numpy as np
from pydantic import Field, model_validator

from components.base import RunContext, Scenario, ScenarioConfig
from components.runtime.trial import TASK_PATH_FAULTS, TaskTrial


def count_words(*texts: str) -> Counter[str]:
    """Map: the words of some texts and how often each occurs."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(text.split())
    return counts


def merge_counts(*counts: Counter[str]) -> Counter[str]:
    """Reduce: the sum of word counts."""
    total: Counter[str] = Counter()
    for part in counts:
        total.update(part)
    return total


def generate_documents(files: int, words: int, vocabulary: int, seed: int) -> list[str]:
    """``files`` documents of ``words`` words each, Zipf-distributed over a random vocabulary."""
    rng = np.random.default_rng(seed)
    letters = np.array(list(string.ascii_lowercase))
    lengths = rng.integers(2, 11, size=vocabulary)
    vocab = np.array(["".join(rng.choice(letters, n)) for n in lengths])
    ranks = np.arange(1, vocabulary + 1, dtype=np.float64)
    weights = 1 / ranks
    weights /= weights.sum()
    return [" ".join(rng.choice(vocab, size=words, p=weights)) for _ in range(files)]


def chunks(documents: list[str], parts: int) -> list[list[str]]:
    """Documents dealt out to ``parts`` map tasks, none left out."""
    return [documents[i::parts] for i in range(parts)]


class MapReduceConfig(ScenarioConfig):
    """TaPS mapreduce: map tasks count words of generated documents, a reduce merges them."""

    kind: Literal["mapreduce"] = "mapreduce"
    requires: ClassVar[tuple[str, ...]] = ("executor", "dataflow")
    fault_kinds: ClassVar[frozenset[str]] = TASK_PATH_FAULTS
    # CPU-bound on every executor worker: its makespan is the figure, so it runs alone.
    exclusive: ClassVar[bool] = True
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "makespan_s",
        "words_counted",
        "result_verified",
        "store_keys_leaked",
    )

    files: int = Field(10, ge=1, le=100_000, description="generated documents")
    words_per_file: int = Field(10_000, ge=1, le=10_000_000, description="words per document")
    vocabulary: int = Field(5_000, ge=1, le=1_000_000, description="distinct words")
    map_tasks: int | None = Field(None, ge=1, le=100_000, description="default: one per file")
    seed: int | None = Field(None, ge=0, description="text seed; null uses the run's seed")

    @model_validator(mode="after")
    def _enough_files(self) -> Self:
        if self.map_tasks is not None and self.map_tasks > self.files:
            raise ValueError(
                f"map_tasks={self.map_tasks} > files={self.files}: a map task would get no document"
            )
        return self

    def build(self) -> Scenario:
        """Create the scenario."""
        return MapReduce(self)


class MapReduce:
    """One trial: generate, map, reduce, check."""

    def __init__(self, config: MapReduceConfig) -> None:
        self.config = config

    def run(self, ctx: RunContext) -> None:
        """Count the words on the executor and check every count."""
        cfg = self.config
        seed = ctx.seed if cfg.seed is None else cfg.seed
        documents = generate_documents(cfg.files, cfg.words_per_file, cfg.vocabulary, seed)
        parts = chunks(documents, cfg.map_tasks or cfg.files)
        trial = TaskTrial(ctx)
        with trial as path, ctx.progress.bar(f"trial {ctx.trial}: mapreduce", len(parts) + 1):
            maps = [path.submit(count_words, *part, name="map") for part in parts]
            reduce = path.submit(merge_counts, *maps, name="reduce")
            path.wait()
            counted = Counter(reduce.value) if reduce.success else Counter()
        expected = count_words(*documents)
        total = sum(counted.values())
        verified = total == cfg.files * cfg.words_per_file and counted == expected
        trial.record(
            {
                "words_counted": float(total),
                "distinct_words": float(len(counted)),
                "result_verified": float(verified),
            }
        )
        ctx.write_records(
            "top_words", [{"word": w, "count": c} for w, c in counted.most_common(20)]
        )
