"""MLflow tracking. The only module that talks to MLflow; everything goes by explicit run id."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from framework.config import MlflowLocalTracking, MlflowServerTracking
from framework.errors import LoomError

_MAX_PARAM_CHARS = 6000
_BATCH = 100


def quiet_mlflow(verbose: bool) -> None:
    """Silence MLflow's and alembic's INFO lines (database migrations) unless verbose."""
    import os

    level = logging.INFO if verbose else logging.WARNING
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", logging.getLevelName(level))
    import mlflow  # noqa: F401  (configures its loggers on import; set levels after)

    for name in ("mlflow", "alembic", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(level)


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (relative to the cwd), else None."""
    return Path(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else None


def store_uri(uri: str) -> str:
    """``uri`` with a relative SQLite path made absolute.

    MLflow caches a SQLite store by its URI: with a relative one, a process that changes its
    folder (the test suite) keeps reading and writing the first folder's database.
    """
    db = sqlite_path(uri)
    return f"sqlite:///{db.resolve()}" if db is not None else uri


def _check_server(uri: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds on an unreachable server (MLflow's client retries for minutes)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s):
            return
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise LoomError(
            f"tracking.uri={uri}: no MLflow server answered within {timeout_s:.0f} s "
            f"({reason}); start it, or use the local store (tracking=mlflow_local)"
        ) from None


# MLflow 3 opens an experiment on its GenAI pages (traces) unless told it holds training runs.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


class Tracker:
    """Creates experiments and (nested) runs and logs params, metrics and artifacts."""

    def __init__(self, config: MlflowLocalTracking | MlflowServerTracking, results_dir: Path):
        from mlflow.tracking import MlflowClient

        self.uri = config.uri
        if self.uri.startswith(("http://", "https://")):
            _check_server(self.uri)
        if (db := sqlite_path(self.uri)) is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
        self._artifact_root = None
        if isinstance(config, MlflowLocalTracking):
            self._artifact_root = config.artifact_location or (
                (results_dir / "mlartifacts").resolve().as_uri()
            )
        self.client = MlflowClient(tracking_uri=store_uri(self.uri))

    def experiment_id(self, name: str) -> str:
        """The id of experiment ``name``, created if needed."""
        try:
            found = self.client.get_experiment_by_name(name)
            if found is not None:
                if found.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
                    self.client.set_experiment_tag(
                        found.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND
                    )
                return str(found.experiment_id)
            location = None
            if self._artifact_root:
                slug = re.sub(r"[^\w.-]+", "_", name)
                location = f"{self._artifact_root.rstrip('/')}/{slug}"
            created = self.client.create_experiment(
                name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
            )
            return str(created)
        except Exception as exc:
            raise LoomError(
                f"MLflow tracking at {self.uri} is not usable: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            ) from None

    def start_run(
        self, experiment_id: str, name: str, tags: Mapping[str, str], parent_id: str | None = None
    ) -> str:
        """Create a run (nested under ``parent_id`` if given) and return its id."""
        all_tags = dict(tags)
        if parent_id:
            all_tags["mlflow.parentRunId"] = parent_id
        run = self.client.create_run(experiment_id, run_name=name, tags=all_tags)
        return str(run.info.run_id)

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        """Log params in batches; over-long values are cut."""
        from mlflow.entities import Param

        items = [Param(k, v[:_MAX_PARAM_CHARS]) for k, v in params.items()]
        for start in range(0, len(items), _BATCH):
            self.client.log_batch(run_id, params=items[start : start + _BATCH])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        """Log metrics in batches."""
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        for start in range(0, len(items), _BATCH):
            self.client.log_batch(run_id, metrics=items[start : start + _BATCH])

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Set tags on a run."""
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    def log_artifact(self, run_id: str, path: Path) -> None:
        """Upload one file."""
        self.client.log_artifact(run_id, str(path))

    def log_artifacts(self, run_id: str, folder: Path, artifact_path: str | None = None) -> None:
        """Upload every file under ``folder``."""
        self.client.log_artifacts(run_id, str(folder), artifact_path)

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        """Mark a run FINISHED, FAILED or KILLED."""
        self.client.set_terminated(run_id, status)

    def job_metrics(self, run_id: str) -> dict[str, float]:
        """The metrics a job run logged (their latest values)."""
        return {k: float(v) for k, v in self.client.get_run(run_id).data.metrics.items()}

    def finished_run(self, experiment_id: str, config_hash: str) -> str | None:
        """A finished job run with this config hash, if any (for resume)."""
        runs = self.client.search_runs(
            [experiment_id],
            filter_string=(
                f"tags.`loom.config_hash` = '{config_hash}' and "
                "tags.`loom.run_type` = 'job' and attributes.status = 'FINISHED'"
            ),
            max_results=1,
        )
        return str(runs[0].info.run_id) if runs else None


# Tag of the option each component group was picked as: ``loom.option.placement`` = ``ec_3_2``.
OPTION_TAG_PREFIX = "loom.option."


def job_runs(uri: str, experiment: str) -> Any:
    """Finished job runs of an experiment as a DataFrame (for reports)."""
    import mlflow

    mlflow.set_tracking_uri(store_uri(uri))
    if mlflow.get_experiment_by_name(experiment) is None:
        raise LoomError(
            f"no MLflow experiment named '{experiment}' at {uri}; run the recipe "
            "first (loom run recipe=...)"
        )
    return mlflow.search_runs(
        experiment_names=[experiment],
        filter_string="tags.`loom.run_type` = 'job' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time ASC"],
    )
