"""The load bench's data, as bench/bench_predict.py seeds it: demo daily bars ending now for
N_SYMBOLS symbols, core_technical materialized (offline + online store), and a model trained on
it, registered and promoted to Production (the policy's metric floors overridden with a recorded
justification: the demo data has no edge). Run by bench/load/run.py with the bench's production
environment (`python -m bench.load.seed USERNAME MODEL N_SYMBOLS N_BARS`); prints the feature
view's name and the symbols as JSON."""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta


def seed(*, username: str, model: str, n_symbols: int, n_bars: int) -> dict[str, object]:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from experiments.train import model_train
    from features.demo import demo_bars
    from features.services import bars_upsert
    from features.store import feature_view_ensure_default
    from registry.models import Stage
    from registry.services import model_version_create_from_run, version_transition

    symbols = [f"L{i:03d}" for i in range(n_symbols)]
    end = timezone.now().replace(microsecond=0) - timedelta(hours=1)
    bars_upsert(frame=demo_bars(symbols=tuple(symbols), n_bars=n_bars, end=end), timeframe="1d")
    view = feature_view_ensure_default()  # registered and materialized: offline + online
    run = model_train(view_name=view.name, symbols=symbols, n_folds=3, run_name="bench-load")
    version = model_version_create_from_run(model_name=model, run=run, user=None)
    version_transition(
        version=version, to_stage=Stage.PRODUCTION,
        actor=get_user_model().objects.get(username=username), reason="load bench",
        override_justification="bench: demo data, no edge expected",
    )  # fmt: skip
    return {"view": view.name, "symbols": symbols}


if __name__ == "__main__":
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")
    django.setup()
    username, model, n_symbols, n_bars = sys.argv[1:5]
    print(json.dumps(seed(username=username, model=model, n_symbols=int(n_symbols),
                          n_bars=int(n_bars))))  # fmt: skip
