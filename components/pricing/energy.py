"""``pricing=energy``: energy-based accounting (EBA), charged joules."""

from __future__ import annotations

from typing import Literal

from components.pricing.protocol import PricingConfig


class EnergyPricingConfig(PricingConfig):
    """Headline: energy-based accounting (EBA), charged joules."""

    kind: Literal["energy"] = "energy"
