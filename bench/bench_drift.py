"""How fast `drift_statistics` compares a current window with its reference, against a bare
numpy pass and Evidently's `DataDriftPreset`, on the same generated data.

Shapes (features × rows): 50 × 10,000, 50 × 100,000 and 10 × 1,000,000; the reference and the
current window have that many rows each. Features mix normal, Student-t, lognormal, uniform and
low-cardinality integer columns with 1 % NaN; in the current window 30 % of them drift (mean
+0.2 std, std ×1.3). rows×features/s counts one window (rows × features) per second.

Contenders, each in its own subprocess that loads the same .npy files:
- ours: `drift.statistics.drift_statistics(reference_array, current, names)` — KS (+ exact or
  asymptotic p-value), PSI, Jensen–Shannon, Wasserstein (+ normed), chi-square on categorical
  columns, Benjamini–Hochberg, severities, charts' histograms. Best of 3.
- ours, stored reference: the same against `reference_statistics(...)` (bins + a 5,000-value
  sample), i.e. what a scheduled scan runs. Best of 3.
- numpy: a bare per-column numpy pass computing KS (+ asymptotic p), PSI, Wasserstein and JS.
  Best of 3.
- Evidently 0.7 `Report([DataDriftPreset()])` (one statistic per column: normed Wasserstein
  above 1,000 reference rows). One run. Evidently does not import with pandas 3, so it runs in
  a bench-only virtualenv, var/bench/evidently-venv (`evidently==0.7.*`, `pandas<3`), created
  here on first use; without network it is skipped with the reason.
Each subprocess first runs its contender on a 1,000-row slice (imports, caches). Peak memory
above the data is the resident set size: the kernel's high-water mark (VmHWM, reset through
/proc/self/clear_refs after loading and warming up) minus the RSS at that reset.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHAPES = ((50, 10_000), (50, 100_000), (10, 1_000_000))  # (features, rows per window)
EVIDENTLY_VENV = ROOT / "var" / "bench" / "evidently-venv"
EVIDENTLY_REQUIREMENTS = ("evidently==0.7.*", "pandas<3")
ROUNDS = 3
TARGET_SPEEDUP, TARGET_RATE, TARGET_MEMORY = 10.0, 2.5e6, 512 * 2**20


def make_windows(n_features: int, n_rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current windows (rows × features); current drifts in 30 % of features."""
    rng = np.random.default_rng(seed)

    def draw(kind: int, size: int, shift: float, scale: float) -> np.ndarray:
        base = (
            rng.normal(size=size),
            rng.standard_t(4, size=size) / np.sqrt(2.0),
            rng.lognormal(0.0, 0.5, size=size),
            rng.uniform(-1.7, 1.7, size=size),
            rng.integers(0, 10, size=size).astype(float),
        )[kind]
        return base * scale + shift

    ref = np.empty((n_rows, n_features))
    cur = np.empty((n_rows, n_features))
    for j in range(n_features):
        kind = j % 5
        drifts = j < round(0.3 * n_features)
        ref[:, j] = draw(kind, n_rows, 0.0, 1.0)
        cur[:, j] = draw(kind, n_rows, 0.2 if drifts else 0.0, 1.3 if drifts else 1.0)
    for window in (ref, cur):
        window[rng.random(window.shape) < 0.01] = np.nan
    return ref, cur


# --- contenders (run inside the worker subprocess) -----------------------------------------


def kolmogorov_sf(x: np.ndarray) -> np.ndarray:
    """P(K > x) of the Kolmogorov distribution, by its alternating series (bare numpy)."""
    k = np.arange(1, 101)[:, None]
    terms = 2.0 * (-1.0) ** (k - 1) * np.exp(-2.0 * k**2 * np.asarray(x, float)[None, :] ** 2)
    return np.clip(np.where(np.asarray(x) > 0.05, terms.sum(axis=0), 1.0), 0.0, 1.0)


def numpy_baseline(ref: np.ndarray, cur: np.ndarray) -> dict[str, np.ndarray]:
    """KS (+ asymptotic p), PSI (reference deciles, 1e-4 floor), Wasserstein-1 and JS (base 2)
    of every column, one vectorized numpy pass per column."""
    out: dict[str, list[float]] = {"ks": [], "p": [], "psi": [], "wasserstein": [], "js": []}
    for j in range(ref.shape[1]):
        a = np.sort(ref[:, j][np.isfinite(ref[:, j])])
        b = np.sort(cur[:, j][np.isfinite(cur[:, j])])
        merged = np.sort(np.concatenate([a, b]))
        cdf_a = np.searchsorted(a, merged, "right") / a.size
        gap = np.abs(cdf_a - np.searchsorted(b, merged, "right") / b.size)
        edges = np.unique(np.quantile(a, np.linspace(0, 1, 11))[1:-1])
        p = np.diff(np.searchsorted(a, edges, "left"), prepend=0, append=a.size) / a.size
        q = np.diff(np.searchsorted(b, edges, "left"), prepend=0, append=b.size) / b.size
        pf, qf, mid = np.maximum(p, 1e-4), np.maximum(q, 1e-4), (p + q) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.nansum(p * np.log(p / mid)) + np.nansum(q * np.log(q / mid))
        en = a.size * b.size / (a.size + b.size)
        out["ks"].append(float(gap.max()))
        out["p"].append(float(kolmogorov_sf(np.array([gap.max() * np.sqrt(en)]))[0]))
        out["wasserstein"].append(float(np.sum(gap[:-1] * np.diff(merged))))
        out["psi"].append(float(np.sum((qf - pf) * np.log(qf / pf))))
        out["js"].append(float(np.sqrt(kl / np.log(2) / 2)))
    return {key: np.array(values) for key, values in out.items()}


def contender(name: str, ref: np.ndarray, cur: np.ndarray) -> tuple[Callable[[], Any], Callable]:
    """(setup → the timed call, summary of its result) for one contender."""
    names = [f"f{j:02d}" for j in range(ref.shape[1])]
    if name == "numpy":
        return lambda: numpy_baseline(ref, cur), lambda r: f"{np.sum(r['p'] < 0.05)} with KS p<0.05"
    if name.startswith("ours"):
        sys.path.insert(0, str(ROOT))
        import pandas as pd

        from drift.reference import reference_statistics
        from drift.statistics import drift_statistics

        reference: Any = ref
        if name == "ours-stored":
            reference = reference_statistics(pd.DataFrame(ref, columns=names), names)

        def summary(report: Any) -> str:
            return f"{report.summary.n_drifted} drifted, report {report.severity}"

        return lambda: drift_statistics(reference, cur, names), summary
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    ref_frame, cur_frame = pd.DataFrame(ref, columns=names), pd.DataFrame(cur, columns=names)

    def run() -> Any:
        return Report([DataDriftPreset()]).run(current_data=cur_frame, reference_data=ref_frame)

    def drifted(snapshot: Any) -> str:
        counts = [m["value"] for m in snapshot.dict()["metrics"] if "count" in str(m["value"])]
        return f"{int(counts[0]['count'])} drifted" if counts else "?"

    return run, drifted


def worker(name: str, folder: Path) -> None:
    ref, cur = np.load(folder / "ref.npy"), np.load(folder / "cur.npy")
    warm_call, _ = contender(name, ref[:1000], cur[:1000])
    warm_call()
    call, summary = contender(name, ref, cur)
    rounds = 1 if name == "evidently" else ROUNDS
    base = _reset_peak_rss()
    best, result = float("inf"), None
    for _ in range(rounds):
        started = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - started)
    peak = _peak_rss() - base
    print(json.dumps({"seconds": best, "peak_bytes": peak, "summary": summary(result)}))


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/self/status")


def _reset_peak_rss() -> int:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    return _status_kib("VmRSS") * 1024


def _peak_rss() -> int:
    return _status_kib("VmHWM") * 1024


# --- the parent ----------------------------------------------------------------------------


def evidently_python() -> tuple[Path | None, str]:
    """The bench venv's python with Evidently importable (creating the venv if needed), or None
    and the reason."""
    python = EVIDENTLY_VENV / "bin" / "python"
    probe = [str(python), "-c", "import evidently, pandas; print(evidently.__version__)"]
    if python.exists():
        found = subprocess.run(probe, capture_output=True, text=True, check=False)
        if found.returncode == 0:
            return python, found.stdout.strip()
    print(f"installing {' '.join(EVIDENTLY_REQUIREMENTS)} into {EVIDENTLY_VENV} ...", flush=True)
    steps = (
        [sys.executable, "-m", "venv", "--clear", str(EVIDENTLY_VENV)],
        [str(python), "-m", "pip", "install", "--quiet", *EVIDENTLY_REQUIREMENTS],
    )
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=900, check=False)
        except subprocess.TimeoutExpired:
            return None, f"{' '.join(step[-3:])} timed out"
        if done.returncode != 0:
            errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
            return None, (errors or done.stderr.strip().splitlines() or ["failed"])[-1]
    found = subprocess.run(probe, capture_output=True, text=True, check=False)
    if found.returncode != 0:
        return None, (found.stderr.strip().splitlines() or ["import failed"])[-1]
    return python, found.stdout.strip()


def run_worker(python: Path, name: str, folder: Path) -> dict[str, Any]:
    command = [str(python), str(Path(__file__).resolve()), "--worker", name, str(folder)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{name} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    evidently, detail = evidently_python()
    if evidently is None:
        print(f"Evidently baseline skipped: {detail}")
    else:
        print(f"Evidently {detail} from {EVIDENTLY_VENV.relative_to(ROOT)}")
    labels = {
        "ours": "ours, drift_statistics",
        "ours-stored": "ours, stored reference",
        "numpy": "bare numpy baseline",
        "evidently": "Evidently DataDriftPreset",
    }
    verdicts = []
    for n_features, n_rows in SHAPES:
        cells = n_features * n_rows
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            ref, cur = make_windows(n_features, n_rows)
            np.save(folder / "ref.npy", ref)
            np.save(folder / "cur.npy", cur)
            del ref, cur
            ours_python = Path(sys.executable)
            results = {
                n: run_worker(ours_python, n, folder) for n in ("ours", "ours-stored", "numpy")
            }
            if evidently is not None:
                results["evidently"] = run_worker(evidently, "evidently", folder)
        print(f"\n{n_features} features × {n_rows:,} rows (reference and current each)")
        print(f"  {'':28} {'seconds':>9} {'M rows×feat/s':>14} {'MiB above data':>15}  result")
        for name, r in results.items():
            rate = cells / r["seconds"] / 1e6
            mib = r["peak_bytes"] / 2**20
            line = f"  {labels[name]:28} {r['seconds']:9.3f} {rate:14.2f} {mib:15.0f}  "
            print(line + r["summary"])
        ours = results["ours"]
        ratios = [f"numpy/ours {results['numpy']['seconds'] / ours['seconds']:.2f}×"]
        ok = ours["seconds"] <= cells / TARGET_RATE and ours["peak_bytes"] <= TARGET_MEMORY
        if "evidently" in results:
            speedup = results["evidently"]["seconds"] / ours["seconds"]
            ratios.insert(0, f"Evidently/ours {speedup:.1f}× (target ≥ {TARGET_SPEEDUP:.0f}×)")
            ok = ok and speedup >= TARGET_SPEEDUP
        rate_ok = cells / ours["seconds"] >= TARGET_RATE
        ratios.append(f"ours ≥ 2.5 M rows×feat/s: {'yes' if rate_ok else 'NO'}")
        memory_ok = ours["peak_bytes"] <= TARGET_MEMORY
        ratios.append(f"≤ 0.5 GiB above data: {'yes' if memory_ok else 'NO'}")
        print("  " + "; ".join(ratios))
        verdicts.append(ok)
    print(f"\ntargets met at every size: {'yes' if all(verdicts) else 'NO'}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        worker(sys.argv[2], Path(sys.argv[3]))
    else:
        main()
