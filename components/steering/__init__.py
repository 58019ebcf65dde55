"""The ``steering`` group: how a campaign is steered (Colmena Thinkers).

``protocol.py`` holds what ``build()`` returns, the config base and the campaign's settings;
each option (``random``, ``batch``, ``streaming``, ``interleaved``, ``reallocation``) has its
module; ``_campaign`` is what they share. The Colmena plumbing a campaign runs on is public:
``queues`` (pipe, Redis and event-fabric queues) and ``server`` (a task server on a Loom
executor).
"""

from components.steering.protocol import (
    CampaignSettings,
    CampaignThinker,
    SteeringConfig,
    SteeringPolicy,
)

__all__ = ["CampaignSettings", "CampaignThinker", "SteeringConfig", "SteeringPolicy"]
