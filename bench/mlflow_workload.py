"""The MLflow-client workload of bench/bench_tracking.py, run under whichever Python has the
client: ours (.venv, mlflow-skinny, against a tradingsite server) or the bench-only MLflow venv
(full mlflow, against its local sqlite store). Prints one JSON object.

    python bench/mlflow_workload.py TRACKING_URI [--one-by-one N] [--batches N] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("tracking_uri")
    parser.add_argument("--one-by-one", type=int, default=10_000)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument(
        "--client-only",
        action="store_true",
        help="the server is bench/empty_asgi.py: time only the client's calls (no runs exist)",
    )
    parser.add_argument(
        "--behind-tls-proxy",
        action="store_true",
        help="send X-Forwarded-Proto: https, as the TLS proxy in front of production would",
    )
    args = parser.parse_args()

    import mlflow

    if args.behind_tls_proxy:
        _send_forwarded_proto()
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(args.tracking_uri)
    client = MlflowClient(tracking_uri=args.tracking_uri)
    if args.client_only:
        _client_only(client, args)
        return
    name = f"bench-{time.time_ns()}"
    experiment_id = client.create_experiment(name)

    run = client.create_run(experiment_id, run_name="one-by-one")
    started = time.perf_counter()
    calls = _log_one_by_one(client, run.info.run_id, args.one_by_one)
    one_s = time.perf_counter() - started
    client.set_terminated(run.info.run_id)

    run = client.create_run(experiment_id, run_name="batches")
    batch_s = _log_batches(client, run.info.run_id, args.batches, args.batch_size)
    client.set_terminated(run.info.run_id)

    started = time.perf_counter()
    for i in range(args.runs):
        created = client.create_run(experiment_id, run_name=f"r{i}")
        client.set_terminated(created.info.run_id)
    runs_s = time.perf_counter() - started

    print(
        json.dumps(
            {
                "one_by_one": args.one_by_one,
                "one_by_one_s": one_s,
                "log_metric_p50_ms": statistics.median(calls) * 1000,
                "log_metric_p99_ms": calls[int(len(calls) * 0.99) - 1] * 1000,
                "batch_metrics": args.batches * args.batch_size,
                "batch_s": batch_s,
                "runs": args.runs,
                "runs_s": runs_s,
            }
        )
    )


def _log_one_by_one(client, run_id: str, count: int) -> list[float]:  # noqa: ANN001
    """`count` log_metric calls; the seconds each took, sorted."""
    calls = []
    for step in range(count):
        t = time.perf_counter()
        client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
        calls.append(time.perf_counter() - t)
    return sorted(calls)


def _log_batches(client, run_id: str, batches: int, size: int) -> float:  # noqa: ANN001
    """`batches` log_batch calls of `size` metrics (50 keys); the seconds they took."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    started = time.perf_counter()
    for b in range(batches):
        metrics = [
            Metric(key=f"m{i % 50}", value=float(i), timestamp=now, step=b * size + i)
            for i in range(size)
        ]
        client.log_batch(run_id, metrics=metrics)
    return time.perf_counter() - started


def _client_only(client, args) -> None:  # noqa: ANN001
    run_id = "0" * 32  # bench/empty_asgi.py answers {} whatever the run
    calls = _log_one_by_one(client, run_id, args.one_by_one)
    batch_s = _log_batches(client, run_id, args.batches, args.batch_size)
    print(
        json.dumps(
            {
                "log_metric_p50_ms": statistics.median(calls) * 1000,
                "batch_metrics": args.batches * args.batch_size,
                "batch_s": batch_s,
            }
        )
    )


def _send_forwarded_proto() -> None:
    from mlflow.tracking.request_header.abstract_request_header_provider import (
        RequestHeaderProvider,
    )
    from mlflow.tracking.request_header.registry import _request_header_provider_registry

    class ForwardedProto(RequestHeaderProvider):
        def in_context(self) -> bool:
            return True

        def request_headers(self) -> dict[str, str]:
            return {"X-Forwarded-Proto": "https"}

    _request_header_provider_registry.register(ForwardedProto)


if __name__ == "__main__":
    main()
