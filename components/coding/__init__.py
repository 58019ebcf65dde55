"""The ``coding`` group: erasure codes that cut a segment into m chunks, any k rebuilding it.

``protocol.py`` holds what ``build()`` returns, the config base and the errors; each option
has its module; modules starting with ``_`` are internals.
"""

from components.coding.protocol import Coder, CodingConfig, DecodeError

__all__ = ["Coder", "CodingConfig", "DecodeError"]
