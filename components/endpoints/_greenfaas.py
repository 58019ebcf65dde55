"""The authors' synthetic-workload setting: four endpoints and the published task profiles.

Profiles are ``notebooks/results/sebs_task_energy.csv`` of ``AK2000/caws`` (``greenfaas.md``
§1.7): mean runtime (s) and attributed *dynamic* energy (J) of one task of each SeBS function
on each endpoint. Endpoint parameters are ``reproducibility/experiment_config.json`` with the
``caws.Endpoint`` defaults (§1.3), listed in that file's key order, which makes midway the
first endpoint (MHRA's normaliser) and fixes the round-robin order.

Static power and cold start were learned online and never published. The defaults here are
the implied static powers of §1.3 (desktop: green-access's 5 W idle instead of the implausible
0.7 W) and a 30 s cold start; both are swept by ``recipe=greenfaas/calibration``.
"""

from __future__ import annotations

FUNCTIONS = ("bfs", "compression", "dna", "mst", "pagerank", "thumbnail", "video")
ENDPOINTS = ("midway", "desktop", "faster", "theta")

# function → endpoint → (runtime s, dynamic energy J).
# Aligned as a table (one row per line); ruff format would give one cell per line.
PROFILES: dict[str, dict[str, tuple[float, float]]] = {
    "compression": {"desktop": (0.260, 0.312), "midway": (8.318, 1.604),
                    "faster": (0.519, 0.442), "theta": (2.160, 2.035)},
    "dna": {"desktop": (11.215, 128.38), "midway": (16.887, 68.76),
            "faster": (16.262, 39.31), "theta": (101.67, 77.48)},
    "bfs": {"desktop": (0.0437, 0.0194), "midway": (0.0540, 0.0260),
            "faster": (0.1213, 0.0520), "theta": (0.349, 0.335)},
    "mst": {"desktop": (0.0261, 0.0021), "midway": (0.0451, 0.0179),
            "faster": (0.1337, 0.0899), "theta": (0.357, 0.334)},
    "pagerank": {"desktop": (3.294, 0.216), "midway": (25.516, 3.797),
                 "faster": (0.1377, 0.0528), "theta": (0.496, 0.557)},
    "thumbnail": {"desktop": (0.0376, 0.0031), "midway": (0.761, 0.193),
                  "faster": (0.1052, 0.0500), "theta": (0.242, 0.174)},
    "video": {"desktop": (0.533, 0.0012), "midway": (1.067, 0.514),
              "faster": (0.763, 0.710), "theta": (3.608, 1.397)},
    "matmul": {"desktop": (0.0057, 0.0012), "midway": (0.0041, 0.0399),
               "faster": (0.0258, 0.0173), "theta": (0.0259, 0.1426)},
}  # fmt: skip

# endpoint → (slots per block, min blocks, static W): the model's view (§1.3, §1.8).
SITES: dict[str, tuple[int, int, float]] = {
    "midway": (48, 0, 176.5),
    "desktop": (16, 1, 5.0),
    "faster": (64, 0, 266.2),
    "theta": (64, 0, 124.9),
}
# What the authors' scheduler believed: the HEAD config leaves theta's slots_per_block at the
# default 1, so its mock runs Theta one task at a time (and no published run sent it a task);
# the machine itself has 64 workers (and round robin's published 272 s needs more than one).
PLANNING_SLOTS = {"theta": 1}
COLD_START_S = 60.0
SHUTDOWN_S = 10.0

# The published result rows (scheduler_comparison.jsonl): strategy → (T s, E kJ).
PUBLISHED = {
    "single:desktop": (640.49, 33.461),
    "single:theta": (656.37, 103.082),
    "single:midway": (340.47, 79.278),
    "single:faster": (209.36, 66.151),
    "round_robin": (272.33, 69.597),
    "mhra": (707.14, 47.349),
    "cluster_mhra": (175.45, 54.512),
}
PUBLISHED_RATIOS = {"best_alternative": 1.448, "round_robin": 1.982}
# scheduler_sensitivity.jsonl: alpha → (T s, E kJ, tasks on desktop, midway, faster).
SENSITIVITY = {
    0.0: (202.3, 68.14, 15, 128, 1649),
    0.2: (175.4, 54.51, 262, 130, 1400),
    0.4: (402.4, 43.19, 146, 191, 1455),
    0.6: (402.4, 42.24, 141, 243, 1408),
    0.8: (651.5, 33.47, 1536, 0, 256),
    1.0: (677.5, 34.59, 1792, 0, 0),
}
# scheduler_overhead.jsonl: tasks → (MHRA s, ClusterMHRA s).
OVERHEAD_S = {8: (1.73, 0.052), 256: (0.39, 0.065), 1024: (3.81, 0.266), 2048: (13.92, 0.674)}
