"""``steering=interleaved``: a separate agent keeps re-ranking a fixed pool of candidates.

The agent refits the GP and re-ranks the pool every ``opt_delay_s``; the submitter takes the
current top on each free slot.
"""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import Field

from components.steering._campaign import (
    MIN_TRAINING,
    POOL_SIZE,
    SURROGATE_NOISE,
    InterleavedSearch,
    Policy,
)
from components.steering.protocol import SteeringConfig

log = logging.getLogger(__name__)


class InterleavedSteeringConfig(SteeringConfig):
    """A separate agent keeps re-ranking a fixed pool; the submitter takes its top."""

    kind: Literal["interleaved"] = "interleaved"
    min_training: int = MIN_TRAINING
    surrogate_noise: bool = SURROGATE_NOISE
    pool: int = POOL_SIZE
    opt_delay_s: float = Field(0.0, ge=0, le=3600, description="pause between re-rankings")

    def build(self) -> Policy:
        """The policy."""
        return Policy.of(self, InterleavedSearch)
