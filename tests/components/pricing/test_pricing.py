"""The ``pricing`` group: every scheme's charge, and each option's headline."""

from __future__ import annotations

import pytest

from components.energy.profiles import ENDPOINTS
from components.energy.protocol import EnergyReading
from components.pricing.carbon import CarbonPricingConfig
from components.pricing.energy import EnergyPricingConfig
from components.pricing.node_hours import NodeHoursPricingConfig
from components.pricing.protocol import Pricing


def test_every_scheme_against_hand_computed_values() -> None:
    # 36 J over 10 s on a 16-core, 65 W node, holding one core (share 1/16), Desktop rates.
    reading = EnergyReading(
        joules=36.0,
        source="estimated",
        wall_s=10.0,
        cpu_s=3.0,
        tdp_w=65.0,
        share=1 / 16,
        carbon_intensity_g_per_kwh=502.0,
        embodied_g_per_kwh=376.0,
    )
    charges = Pricing("carbon", nodes=2, rate_per_node_hour=1.5).charge(reading)
    charged_j = (36.0 + 65.0 / 16 * 10.0) / 2  # ((P_dyn + P_idle/cores) + TDP/cores) / 2 * t
    assert charges["charge_energy_j"] == pytest.approx(charged_j)
    assert charges["charge_carbon_g"] == pytest.approx(charged_j / 3.6e6 * (502 + 376))
    assert charges["charge_node_hours"] == pytest.approx(2 * 10 / 3600 * 1.5)
    assert charges["charge"] == charges["charge_carbon_g"]
    assert charges["carbon_g"] == pytest.approx(36.0 / 3.6e6 * 878)
    assert charges["power_w_mean"] == pytest.approx(3.6)
    # The prototype's worked example, Cholesky: (runtime s, adjusted energy J, EBA J, CBA g).
    example = {
        "cascade_lake": (4.61, 35.8, 37.6, 0.00579),
        "desktop": (5.20, 18.3, 19.7, 0.00487),
        "ice_lake": (4.69, 19.7, 21.9, 0.00535),
        "zen3": (5.65, 16.8, 20.8, 0.00549),
    }
    for name, (runtime, adjusted, eba, cba) in example.items():
        machine = ENDPOINTS[name]
        task = EnergyReading(
            adjusted,
            "estimated",
            runtime,
            tdp_w=machine.tdp_w,
            share=1 / machine.cores,
            carbon_intensity_g_per_kwh=machine.carbon_intensity_g_per_kwh,
            embodied_g_per_kwh=machine.embodied_g_per_kwh,
        )
        charged = Pricing("energy", 1, 1.0).charge(task)
        assert charged["charge_energy_j"] == pytest.approx(eba, abs=0.05)
        # Its CBA column integrates per sample (a mean of products): within 6 %.
        assert charged["charge_carbon_g"] == pytest.approx(cba, rel=0.06)
    unmetered = Pricing("energy", 1, 1.0).charge(EnergyReading(0.0, "none", 3600.0))
    assert unmetered["charge_energy_j"] == 0 and unmetered["charge_node_hours"] == 1.0


@pytest.mark.parametrize(
    ("config", "headline"),
    [
        (NodeHoursPricingConfig(nodes=4, rate_per_node_hour=2.0), "charge_node_hours"),
        (EnergyPricingConfig(), "charge_energy_j"),
        (CarbonPricingConfig(), "charge_carbon_g"),
    ],
)
def test_each_option_heads_with_its_own_scheme_and_charges_all(
    config: NodeHoursPricingConfig | EnergyPricingConfig | CarbonPricingConfig, headline: str
) -> None:
    reading = EnergyReading(
        joules=7200.0,
        source="measured",
        wall_s=1800.0,
        tdp_w=100.0,
        share=0.5,
        carbon_intensity_g_per_kwh=400.0,
    )
    charges = config.build().charge(reading)
    assert charges["charge"] == charges[headline]
    assert {"charge_node_hours", "charge_energy_j", "charge_carbon_g"} <= charges.keys()
    assert charges["charge_energy_j"] == pytest.approx((7200.0 + 100.0 * 0.5 * 1800.0) / 2)
    assert charges["charge_node_hours"] == pytest.approx(
        config.nodes * 0.5 * config.rate_per_node_hour
    )
