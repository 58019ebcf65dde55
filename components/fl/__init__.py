"""The ``fl`` group: a federation's topology, strategy, mode, model, data and local training.

``protocol.py`` holds what ``build()`` returns and the config base; ``flight`` is the one
option. The tree (``topology``), the strategies (``strategies``), the data, local training and
the federation's runtime (``federation``, ``jobs``) are the modules it is built from.
"""

from components.fl.protocol import FederatedLearning, FLConfig

__all__ = ["FLConfig", "FederatedLearning"]
