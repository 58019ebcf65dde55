"""``pricing=carbon``: carbon-based accounting (CBA), charged gCO2e (operational + embodied)."""

from __future__ import annotations

from typing import Literal

from components.pricing.protocol import PricingConfig


class CarbonPricingConfig(PricingConfig):
    """Headline: carbon-based accounting (CBA), charged gCO2e (operational + embodied)."""

    kind: Literal["carbon"] = "carbon"
