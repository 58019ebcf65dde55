"""glibc's ``rand()``, bit for bit: what the reference simulator draws its random targets from.

glibc's default generator (``TYPE_3`` behind ``random_r``) is an additive lagged Fibonacci
generator over 34 words: ``srand(seed)`` fills r[0..30] with 16807·r[i−1] mod (2³¹ − 1)
(``seed`` 0 counts as 1), copies r[0..2] to r[31..33], then each word is
r[i] = r[i−31] + r[i−3] mod 2³²; the first 310 are discarded and ``rand()`` returns the
next word shifted right by one bit (0 ≤ value ≤ ``RAND_MAX`` = 2³¹ − 1).
"""

from __future__ import annotations

from collections import deque

RAND_MAX = 2**31 - 1
_LAG_LONG, _LAG_SHORT = 31, 3
_DISCARDED = 310


class GlibcRandom:
    """The sequence of glibc's ``rand()`` after ``srand(seed)``.

    Args:
        seed: The value passed to ``srand`` (an ``unsigned int``; 0 behaves as 1).

    """

    def __init__(self, seed: int) -> None:
        if not 0 <= seed < 2**32:
            raise ValueError(f"seed={seed} must be an unsigned 32-bit value (0 .. 2**32 - 1)")
        word = seed if seed != 0 else 1
        # srand keeps the seed in a 32-bit signed int.
        if word >= 2**31:
            word -= 2**32
        state = [word]
        for _ in range(1, _LAG_LONG):
            # Schrage's method, exactly as glibc computes 16807·word mod (2³¹ - 1) in int32.
            high = abs(word) // 127_773 * (1 if word >= 0 else -1)  # C truncates to zero
            low = word - high * 127_773
            word = 16_807 * low - 2_836 * high
            if word < 0:
                word += RAND_MAX
            state.append(word)
        words = [w & 0xFFFFFFFF for w in state]
        words += words[:_LAG_SHORT]
        self._window: deque[int] = deque(words, maxlen=_LAG_LONG + _LAG_SHORT)
        for _ in range(_DISCARDED):
            self._next_word()

    def _next_word(self) -> int:
        window = self._window
        word = (window[-_LAG_LONG] + window[-_LAG_SHORT]) & 0xFFFFFFFF
        window.append(word)
        return word

    def rand(self) -> int:
        """The next value of ``rand()``."""
        return self._next_word() >> 1
