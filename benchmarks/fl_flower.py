"""Flower 1.42's simulation side of ``benchmarks/fl.py`` (run in its own environment).

Flower pins FastAPI below the range Prefect needs, so it cannot share Loom's environment:
``benchmarks/fl.py`` makes ``.venv-flower`` (Flower, Ray, the same torch CPU wheel, scikit-learn)
and runs this script there with the project on ``PYTHONPATH``. It imports only Loom's torch-only
FL modules (data, split, model, local training), so both sides train the same model on the same
split with the same per-client seeds; what differs is the runtime that moves the models.

Timing is defined as on Loom's side: a round runs from the strategy's ``configure_train`` (the
dispatch) to the end of ``aggregate_train`` (the aggregated model at the server); start-up is
script start to the first dispatch (imports, Ray, the actors). Central evaluation is outside
the round on both sides, and federated evaluation is off.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

STARTED = time.perf_counter()


def main(settings: dict[str, Any], out_path: str) -> None:
    """Run ``settings["rounds"]`` FedAvg rounds over ``settings["devices"]`` simulated nodes."""
    import torch
    from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import FedAvg
    from flwr.simulation import run_simulation

    from components.fl.federation import hash_seed
    from components.fl.jobs import DataSpec, ModelSpec, federation_data, model_of
    from components.fl.training import LocalTraining, evaluate, initial_params, train_one

    devices, rounds, seed = settings["devices"], settings["rounds"], settings["seed"]
    data = DataSpec(**settings["data"])
    model = ModelSpec(**settings["model"])
    local = LocalTraining(**settings["local"])
    record: dict[str, Any] = {"round_s": [], "dispatch": []}

    def save(partial: bool) -> None:
        record["startup_s"] = record["dispatch"][0] - STARTED if record["dispatch"] else None
        with open(out_path + (".partial" if partial else ""), "w") as fh:
            json.dump(record, fh)

    client = ClientApp()

    @client.train()
    def train(msg: Message, context: Context) -> Message:
        torch.set_num_threads(1)  # one core per actor, as one per Loom worker
        worker = int(context.node_config["partition-id"])
        round_ = int(msg.content["config"]["server-round"]) - 1
        x, y, parts = federation_data(data)
        index = torch.as_tensor(parts[worker])
        start = msg.content["arrays"].to_torch_state_dict()
        state = train_one(
            model_of(model), start, x[index], y[index], local, hash_seed(seed, round_, worker)
        )
        content = RecordDict(
            {"arrays": ArrayRecord(state), "metrics": MetricRecord({"num-examples": len(index)})}
        )
        return Message(content=content, reply_to=msg)

    class TimedFedAvg(FedAvg):
        """FedAvg that stamps each round's dispatch and aggregation."""

        def configure_train(self, server_round: int, *args: Any, **kwargs: Any) -> Any:
            record["dispatch"].append(time.perf_counter())
            return super().configure_train(server_round, *args, **kwargs)

        def aggregate_train(self, server_round: int, *args: Any, **kwargs: Any) -> Any:
            out = super().aggregate_train(server_round, *args, **kwargs)
            record["round_s"].append(time.perf_counter() - record["dispatch"][-1])
            save(partial=True)  # a run stopped by the time-out still says how far it got
            return out

    server = ServerApp()
    net = model_of(model)
    x_test, y_test = (torch.as_tensor(a) for a in federation_test(settings))

    @server.main()
    def run(grid: Grid, context: Context) -> None:
        strategy = TimedFedAvg(
            fraction_train=1.0,
            fraction_evaluate=0.0,
            min_train_nodes=devices,
            min_available_nodes=devices,
        )
        result = strategy.start(
            grid=grid, initial_arrays=ArrayRecord(initial_params(net, seed)), num_rounds=rounds
        )
        final = result.arrays.to_torch_state_dict()
        record["accuracy"], record["loss"] = evaluate(net, final, x_test, y_test)

    resources = {"client_resources": {"num_cpus": 1, "num_gpus": 0.0}}
    run_simulation(
        server_app=server, client_app=client, num_supernodes=devices, backend_config=resources
    )
    save(partial=False)


def federation_test(settings: dict[str, Any]) -> tuple[Any, Any]:
    """The central test set of the run's data (the same as Loom's)."""
    from components.fl.data import load

    data = settings["data"]
    test = load(data["dataset"], data["seed"], data["samples"])
    return test.x_test, test.y_test


if __name__ == "__main__":
    main(json.loads(sys.argv[1]), sys.argv[2])
