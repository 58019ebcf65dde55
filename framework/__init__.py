"""Loom's engine: config, registry, Prefect flows, MLflow tracking, CLI."""

__version__ = "0.1.0"
