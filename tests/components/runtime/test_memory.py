"""The allocator thresholds a fabric's process sets: glibc's, kept where the user set them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
import os
from components.runtime.memory import keep_freed_memory
first, again = keep_freed_memory(), keep_freed_memory()
env = os.environ.get
print(first, again, env("MALLOC_TRIM_THRESHOLD_"), env("MALLOC_MMAP_THRESHOLD_"))
"""


def _probe(**env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=clean | env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.split()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_process_keeps_freed_memory_and_its_children_inherit_it() -> None:
    assert _probe() == ["True", "True", str(64 * 2**20), str(4 * 2**20)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_thresholds_the_user_set_are_kept() -> None:
    assert _probe(MALLOC_TRIM_THRESHOLD_="1048576") == [
        "True",
        "True",
        "1048576",
        str(4 * 2**20),
    ]
    assert _probe(MALLOC_TRIM_THRESHOLD_="lots")[:3] == ["False", "False", "lots"]


RELEASE = """
import threading, psutil
from components.runtime.memory import release_freed_memory
me = psutil.Process()

def burst():
    held = [bytearray(2000) for _ in range(50_000)]
    keep = bytearray(2000)  # allocated last: the heap's top stays in use
    del held
    burst.keep = keep

worker = threading.Thread(target=burst)
worker.start()
worker.join()
before = me.memory_info().rss
released = release_freed_memory()
print(released, (before - me.memory_info().rss) // 2**20)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_memory_a_burst_freed_goes_back_to_the_kernel() -> None:
    done = subprocess.run(
        [sys.executable, "-c", RELEASE], capture_output=True, text=True, check=True, timeout=60
    )
    released, mib = done.stdout.split()
    assert released == "True"
    assert int(mib) >= 50  # of the burst's 100 MB
