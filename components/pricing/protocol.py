"""The ``pricing`` group: what a run would be charged under each scheme.

Every scheme is computed and logged; the option chosen (``node_hours``, ``energy``, ``carbon``)
is the headline (``charge``). Formulas as the green-access prototype codes them, for a run
holding ``share`` of a node:

- node-hours: nodes × wall hours × charge rate;
- energy (EBA): charged energy = (energy + TDP × share × wall) / 2, the mean of what the run
  drew (with its idle share) and a TDP reservation — per core this is the prototype's
  ((P_dyn + P_idle/cores) + TDP/cores) / 2;
- carbon (CBA): charged kWh × (grid intensity + embodied rate).

``carbon_g`` is the run's own footprint: its energy (not the charged energy) × the same rates.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from components.base import ComponentConfig
from components.energy.protocol import EnergyReading

J_PER_KWH = 3.6e6
Scheme = Literal["node_hours", "energy", "carbon"]


class Pricing:
    """Charges a reading under every scheme.

    Args:
        scheme: The headline scheme.
        nodes: Nodes the run holds (node-hour charges).
        rate_per_node_hour: Charge per node-hour (a centre's service units).

    """

    def __init__(self, scheme: Scheme, nodes: int, rate_per_node_hour: float) -> None:
        self.scheme, self.nodes, self.rate = scheme, nodes, rate_per_node_hour

    def charge(self, reading: EnergyReading) -> dict[str, float]:
        """The metrics of one trial: energy, power, carbon, and every scheme's charge."""
        wall = reading.wall_s
        energy = reading.joules
        rate_g_per_kwh = reading.carbon_intensity_g_per_kwh + reading.embodied_g_per_kwh
        charged_j = (energy + reading.tdp_w * reading.share * wall) / 2 if energy else 0.0
        charges = {
            "charge_node_hours": self.nodes * wall / 3600 * self.rate,
            "charge_energy_j": charged_j,
            "charge_carbon_g": charged_j / J_PER_KWH * rate_g_per_kwh,
        }
        key = {
            "node_hours": "charge_node_hours",
            "energy": "charge_energy_j",
            "carbon": "charge_carbon_g",
        }[self.scheme]
        return {
            "energy_j": energy,
            "power_w_mean": energy / wall if wall > 0 else 0.0,
            "carbon_g": energy / J_PER_KWH * rate_g_per_kwh,
            "cpu_s": reading.cpu_s,
            **charges,
            "charge": charges[key],
        }


class PricingConfig(ComponentConfig):
    """Every scheme is charged; ``kind`` picks the headline."""

    nodes: int = Field(1, ge=1, description="nodes the run holds (node-hour charges)")
    rate_per_node_hour: float = Field(1.0, ge=0, description="charge per node-hour (SU)")

    def build(self) -> Pricing:
        """Create the pricing."""
        return Pricing(self.kind, self.nodes, self.rate_per_node_hour)  # type: ignore[arg-type]
