"""The ``pricing`` group: what a run is charged, from its energy reading.

``protocol.py`` holds what ``build()`` returns, the config base and the errors; each option
has its module; modules starting with ``_`` are internals.
"""

from components.pricing.protocol import Pricing, PricingConfig

__all__ = ["Pricing", "PricingConfig"]
