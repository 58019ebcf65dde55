"""Options come from entry points; a third-party package adds one without touching Loom."""

from __future__ import annotations

import pytest

from framework import registry
from framework.cli import main
from framework.compose import Composer
from framework.errors import ConfigError


def test_builtin_options_are_registered() -> None:
    assert {"executor", "scenario"} <= set(registry.groups())
    assert registry.options("executor") == ["dask", "process", "thread"]
    assert "synthetic" in registry.options("scenario")


def test_loading_is_lazy_and_checked() -> None:
    model = registry.config_model("executor", "thread")
    assert model.model_fields["kind"].default == "thread"
    with pytest.raises(ConfigError, match="not a registered executor option"):
        registry.config_model("executor", "nope")


def test_plugin_option_composes_validates_and_lists(
    plugin: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "inline" in registry.options("executor")
    composer = Composer()
    assert "inline" in composer.options("executor")  # no YAML: defaults come from the model
    cfg = composer.compose(["executor=inline", "executor.workers=3"])
    executor = cfg.groups["executor"].build()
    with executor:  # type: ignore[attr-defined]
        assert executor.submit(sum, [1, 2]).result() == 3  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"executor\.workers=0"):
        composer.compose(["executor=inline", "executor.workers=0"])
    assert main(["list", "executor"]) == 0
    # The table wraps its cells to the terminal: read the words, not the lines.
    words = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "One-thread executor from a plugin package" in words
