"""Run one contender once, in this (fresh) process, and write what it measured as JSON.

    python -m bench.contenders.worker CONTENDER WORKLOAD_FILE URL OUT_DIR RESULT_FILE [OPTIONS_JSON]

The contender's heavy imports happen before the clock starts (wall and CPU time cover the run,
not the interpreter start).  Peak RSS is the larger of the process's own ``VmHWM`` and the peak
of its whole process tree sampled every 100 ms (worker processes count).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")


def main(argv: list[str]) -> int:
    name, workload_file, url, out_dir, result_file = argv[:5]
    options = json.loads(argv[5]) if len(argv) > 5 else {}
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from bench.contenders.common import TreeRss, Workload, usage, write_result

    w = Workload.from_json(Path(workload_file).read_text(encoding="utf-8"))
    if name == "ours":
        import exporter.run.pipeline  # noqa: F401
        import exporter.store.warehouse  # noqa: F401
        from bench.contenders import ours as module
        kwargs = {}
    elif name == "sequential":
        import requests  # noqa: F401

        from bench.contenders import sequential as module
        kwargs = {}
    elif name == "dlt":
        import dlt  # noqa: F401
        import dlt.sources.helpers.requests  # noqa: F401

        from bench.contenders import dlt_arrow as module
        kwargs = {"destination": options.get("dlt_destination", "filesystem"),
                  "disposition": options.get("dlt_disposition", "append")}
    else:
        raise SystemExit(f"unknown contender {name!r}")
    before = usage()
    started = time.perf_counter()
    profile_to = os.environ.get("BENCH_PROFILE")  # a cProfile dump of the run, for finding hot spots
    with TreeRss() as tree:  # worker processes (ours parses in a pool) count toward peak RSS
        if profile_to:
            import cProfile

            with cProfile.Profile() as profiler:
                outcome = module.run(w, url, Path(out_dir), **kwargs)
            profiler.dump_stats(f"{profile_to}.{name}")
        else:
            outcome = module.run(w, url, Path(out_dir), **kwargs)
    outcome.wall_s = time.perf_counter() - started
    after = usage()
    data = dataclasses.asdict(outcome)
    data["cpu_run_s"] = after["cpu_s"] - before["cpu_s"]
    data["peak_rss_self_mib"] = after["peak_rss_mib"]
    data["peak_rss_tree_mib"] = tree.peak_mib
    write_result(Path(result_file), data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
