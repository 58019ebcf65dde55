"""Write the hourly carbon-intensity shapes of the composite recipes (``data/carbon/*.csv``).

Run: python data/carbon/make_series.py   (deterministic: the CSVs are committed as written)

They are shapes made for the recipes, not measurements: each is one week of hourly values
whose mean and mean daily max/min match published summaries of European grids (see
``README.md`` here), with a daily cycle peaking at the grid's usual evening hour, a
day-to-day swing for wind and weather, and a little seeded noise.
"""

from __future__ import annotations

import csv
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday, midnight UTC
DAYS = 7

# grid: (mean gCO2e/kWh, mean daily max/min, hour of the daily minimum (UTC), day swing)
GRIDS = {
    "de": (313.0, 1.56, 12, 0.12),  # solar trough at midday, evening peak
    "gb": (213.0, 1.75, 3, 0.15),  # night trough (wind, low demand), evening peak
    "fr": (56.0, 1.35, 13, 0.06),  # nuclear base load: low and flat
    "pl": (660.0, 1.18, 12, 0.04),  # coal base load: high and flat
}


def series(mean: float, ratio: float, trough_hour: int, swing: float, seed: int) -> list[float]:
    """Hourly values: a daily cosine with max/min ``ratio``, a day swing, noise; mean ``mean``."""
    rng = random.Random(seed)
    amplitude = (ratio - 1) / (ratio + 1)  # (1 + a) / (1 - a) = ratio
    phase = rng.uniform(0, 2 * math.pi)
    values = []
    for hour in range(24 * DAYS):
        day, of_day = divmod(hour, 24)
        daily = 1 - amplitude * math.cos(2 * math.pi * (of_day - trough_hour) / 24)
        weather = 1 + swing * math.sin(2 * math.pi * day / DAYS + phase)
        values.append(daily * weather * (1 + rng.gauss(0, 0.01)))
    scale = mean / (sum(values) / len(values))
    return [v * scale for v in values]


def main() -> None:
    """Write one CSV per grid beside this script."""
    here = Path(__file__).parent
    for seed, (name, (mean, ratio, trough, swing)) in enumerate(GRIDS.items()):
        with (here / f"{name}.csv").open("w", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(["timestamp", "g_per_kwh"])
            for hour, value in enumerate(series(mean, ratio, trough, swing, seed)):
                when = START + timedelta(hours=hour)
                out.writerow([when.strftime("%Y-%m-%dT%H:%M:%SZ"), f"{value:.1f}"])


if __name__ == "__main__":
    main()
