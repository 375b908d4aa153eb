"""Benchmark: the console's pages on a province-scale ledger (2,000 units × 100 tasks).

    python bench/bench_web.py                      # writes bench/RESULTS.md "## web"
    python bench/bench_web.py --units 200 --seconds 5 --no-write

The ledger is bench_report's synthetic province (the same shapes as bench_scale's: about
174,000 assignments, 300,000 responses).  In one run:

- server time (Flask, no network) of 总览 ``/``, a unit page and a task page, each the median of
  several requests;
- ``automation status --json`` alone: :func:`automation.progress.status.status_summary` and
  ``json.dumps`` — the same snapshot 总览 is drawn from, plus every assignment's row;
- a naive page: ``pandas.read_sql`` of all assignments with their current answers →
  ``DataFrame.to_html``;
- load: 20 concurrent clients for 30 s against waitress on 127.0.0.1 (总览, unit pages, task
  pages, /api/jobs in turn), counting errors.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from results import write_section  # bench/results.py (the script folder is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_report import NOW, build_ledger, config_for  # noqa: E402

from automation.ledger import Ledger  # noqa: E402


def timed(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    """Median seconds of ``repeat`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def load(base: str, unit_ids: list[int], tasks: int, clients: int, seconds: float) -> dict[str, float]:
    stop = time.monotonic() + seconds
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []

    def client(k: int) -> None:
        rng = random.Random(k)
        paths = ["/", f"/units/{rng.choice(unit_ids)}", f"/tasks/{rng.randint(1, tasks)}", "/api/jobs"]
        i = k
        while time.monotonic() < stop:
            path = paths[i % len(paths)]
            i += 1
            start = time.perf_counter()
            try:
                with urllib.request.urlopen(base + path, timeout=120) as r:
                    r.read()
                    ok = r.status == 200
            except Exception as exc:  # noqa: BLE001 - every failure is counted, none stops the run
                ok = False
                with lock:
                    errors.append(f"{path}: {exc}")
            with lock:
                latencies.append(time.perf_counter() - start)
                if not ok and not errors:
                    errors.append(path)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()
    return {"requests": len(latencies), "errors": len(errors), "p50": latencies[len(latencies) // 2],
            "p95": latencies[int(len(latencies) * 0.95)], "max": latencies[-1], "first_error": errors[0] if errors else ""}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=2000)
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    args = ap.parse_args()

    import pandas as pd

    from automation.progress.status import status_summary
    from automation.web.app import create_app
    from automation.web.server import make_server

    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        ledger_path = Path(tmp) / "ledger.sqlite3"
        t0 = time.perf_counter()
        sizes = build_ledger(ledger_path, args.units, args.tasks)
        print(f"ledger: {sizes} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        groups = json.loads((Path(tmp) / "groups.json").read_text(encoding="utf-8"))
        config = config_for(Path(tmp), groups)
        led = Ledger(ledger_path)
        batch = led.require_batch(config.batch.title)
        unit_ids = [u.id for u in led.assigned_units(batch.id)]
        app = create_app(config, now=lambda: NOW)
        client = app.test_client()

        def page(path: str):  # type: ignore[no-untyped-def]
            def get() -> None:
                r = client.get(path, headers={"Host": "127.0.0.1"})
                assert r.status_code == 200, (path, r.status_code)
                r.get_data()
            return get

        def status() -> None:
            json.dumps(status_summary(config, led, NOW), ensure_ascii=False, default=str)

        def naive() -> None:
            # the ledger's own current-answers query, as a page written straight over pandas would run it
            from automation.ledger.answers import _CURRENT_ANSWERS_SQL

            frame = pd.read_sql(_CURRENT_ANSWERS_SQL, led.conn, params=(batch.id,))
            frame.to_html()

        worst_unit = unit_ids[len(unit_ids) // 2]
        figures = {
            "overview": timed(page("/"), args.repeat),
            "unit": timed(page(f"/units/{worst_unit}"), args.repeat),
            "task": timed(page(f"/tasks/{args.tasks // 2}"), args.repeat),
            "status": timed(status, args.repeat),
            "naive": timed(naive, max(1, args.repeat // 2)),
        }
        print(json.dumps(figures), file=sys.stderr)
        server = make_server(config, "127.0.0.1", 0, now=lambda: NOW)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            loaded = load(f"http://127.0.0.1:{server.effective_port}", unit_ids, args.tasks, args.clients, args.seconds)
        finally:
            server.close()
        print(json.dumps(loaded), file=sys.stderr)
        led.close()
    ratio_status = figures["overview"] / figures["status"]
    ratio_naive = figures["naive"] / figures["overview"]
    text = f"""## web

Console pages (`bench/bench_web.py`) on a synthetic province ledger: {sizes['units']:,} units × {sizes['tasks']} tasks,
{sizes['assignments']:,} assignments, {sizes['responses']:,} responses; {platform.python_version()}, {os.cpu_count()} cores.
Server time (Flask test client, no network), median of {args.repeat}:

| | seconds |
|---|---:|
| 总览 `/` (snapshot + 2,000-row table + SVG charts) | {figures['overview']:.2f} |
| 单位详情 `/units/<id>` | {figures['unit']:.3f} |
| 任务详情 `/tasks/<n>` | {figures['task']:.3f} |
| `automation status --json` computation (status_summary + json.dumps) | {figures['status']:.2f} |
| naive page: `pandas.read_sql` of all assignments → `DataFrame.to_html` | {figures['naive']:.2f} |

总览 takes {ratio_status:.2f}× the status computation (goal ≤ 1.5×) and is {ratio_naive:.1f}× faster than the
naive page (goal ≥ 5×).  The unit and task pages read only their unit's or task's rows.

Load: {args.clients} concurrent clients for {args.seconds:.0f} s against waitress on 127.0.0.1 (8 threads), cycling
总览, unit pages, task pages and `/api/jobs`: {loaded['requests']} requests, **{loaded['errors']} errors**,
latency p50 {loaded['p50']:.2f} s, p95 {loaded['p95']:.2f} s, max {loaded['max']:.2f} s (总览 requests queue behind
each other on two cores; the small pages stay quick).
"""
    print(text)
    if not args.no_write:
        write_section("web", text)


if __name__ == "__main__":
    main()
