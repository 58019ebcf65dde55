"""``pricing=node_hours``: node-hours (nodes × wall hours × rate), as centres charge today."""

from __future__ import annotations

from typing import Literal

from components.pricing.protocol import PricingConfig


class NodeHoursPricingConfig(PricingConfig):
    """Headline: node-hours (nodes × wall hours × rate), as centres charge today."""

    kind: Literal["node_hours"] = "node_hours"
