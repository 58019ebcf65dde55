"""What each group's components provide: one protocol (or base class) per group.

The registry says which options a group has; this table says what every option's ``build()``
must return, so that a third-party option is checked when it is built, not when a scenario
first calls it. Modules are named, not imported: a run loads only its own groups.
"""

from __future__ import annotations

from importlib import import_module

GROUP_PROTOCOLS: dict[str, str] = {
    "coding": "components.coding.protocol:Coder",
    "dataflow": "components.dataflow.protocol:DataFlow",
    "endpoints": "components.endpoints.protocol:Endpoints",
    "energy": "components.energy.protocol:EnergyMeter",
    "events": "components.events.protocol:EventFabric",
    "executor": "components.executor.protocol:LoomExecutor",
    "faults": "components.faults.run:FaultSchedule",
    "fl": "components.fl.protocol:FederatedLearning",
    "placement": "components.placement.protocol:Placer",
    "pricing": "components.pricing.protocol:Pricing",
    "scenario": "components.base:Scenario",
    "steering": "components.steering.protocol:SteeringPolicy",
    "storage": "components.storage.protocol:StorageNetwork",
    "task_placement": "components.task_placement.protocol:TaskPlacer",
}


def group_protocol(group: str) -> type | None:
    """The protocol or class that ``group``'s components provide (None: a group of its own)."""
    target = GROUP_PROTOCOLS.get(group)
    if target is None:
        return None
    module, name = target.split(":")
    found: type = getattr(import_module(module), name)
    return found


def check_provides(group: str, option: str, component: object) -> None:
    """Raise TypeError unless ``component`` provides ``group``'s protocol.

    Raises:
        TypeError: naming the option, what it built and the members it lacks.

    """
    expected = group_protocol(group)
    if expected is None or isinstance(component, expected):
        return
    missing = sorted(m for m in _members(expected) if not hasattr(component, m))
    lacking = f" (missing: {', '.join(missing)})" if missing else ""
    raise TypeError(
        f"{group} option {option!r} built {type(component).__qualname__}, which is not "
        f"a {expected.__name__}{lacking}"
    )


def _members(expected: type) -> set[str]:
    """The public attributes and methods ``expected`` declares (its own and its bases')."""
    names: set[str] = set()
    for cls in expected.__mro__:
        if cls.__module__ in ("builtins", "typing"):
            continue
        names |= {n for n in (*vars(cls), *getattr(cls, "__annotations__", {})) if n[0] != "_"}
    return names
