"""A fresh simulator in its own process, for one contender run.

    python -m bench.contenders.simserver WORKLOAD_JSON_FILE GROUND_TRUTH_DIR

Starts the simulator for the workload on 127.0.0.1 (port 0), makes sure the ground-truth key
files exist in GROUND_TRUTH_DIR (one Parquet file per dataset: the natural key, normalised, plus
the start column, as epoch seconds; computed once per workload and reused), then prints one line
``SIM-READY {"url": ..., "control": ...}`` and serves until stdin closes or SIGTERM arrives.

Running the server in its own process keeps its CPU time and memory (it holds every simulated
record) out of the contender's figures; asking for the ground truth before printing the URL also
means every day of the world is generated before the first request, so no contender pays for it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bench.contenders.common import Workload
from exporter.model.datasets import by_name

READY = "SIM-READY "


def key_table(dataset: str, rows: list[dict[str, Any]]) -> pa.Table:
    """Natural key (strings: None -> "", times: epoch seconds) and start epoch of each record."""
    ds = by_name(dataset)
    types = {c.name: c.type for c in ds.columns}
    columns: dict[str, pa.Array] = {}
    for name in ds.natural_key:
        values = [r.get(name) for r in rows]
        columns[name] = _normalise(types[name], values)
    starts = [r.get(ds.start_column) for r in rows]
    columns["_start"] = _normalise("timestamp", starts)
    return pa.table(columns)


def _normalise(type_: str, values: list[Any]) -> pa.Array:
    if type_ == "timestamp":
        return pa.array([_epoch(v) for v in values], pa.int64())
    if type_ == "int":
        return pa.array(values, pa.int64())
    return pa.array(["" if v is None else str(v) for v in values], pa.string())


def _epoch(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, str):
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    return int(value)


async def main(workload_file: str, truth_dir: str) -> None:
    from exporter.simulator import Simulator

    w = Workload.from_json(Path(workload_file).read_text(encoding="utf-8"))
    truth = Path(truth_dir)
    truth.mkdir(parents=True, exist_ok=True)
    sim = Simulator(w.simulator_config())
    url = await sim.start(host="127.0.0.1", port=0)
    started = time.perf_counter()
    for dataset in w.datasets:
        target = truth / f"{dataset}.parquet"
        rows = sim.ground_truth(w.site, dataset)  # also generates every day of the world
        if not target.exists():
            tmp = target.with_suffix(".tmp")
            pq.write_table(key_table(dataset, rows), tmp)
            tmp.replace(target)
        del rows
    base = url.split("/WBXService")[0]
    print(READY + json.dumps({"url": url, "control": f"{base}/_sim", "prepare_s": round(time.perf_counter() - started, 2)}),
          flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.buffer.read1(4096) else None)
    await stop.wait()
    await sim.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
