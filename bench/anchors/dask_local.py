#!/usr/bin/env python3
"""Anchor: the real Dask's local schedulers on tree-N (see /work/shared/BENCHMARKS.md).

Runs under either interpreter the benchmarks use: Dask 2026.8 in the cached PyPI
environment (bench/venv.ts), or Debian's /usr/bin/python3 with python3-dask:

    python bench/anchors/dask_local.py --n 50000 --repeat 3

Prints one JSON line per run and system, then one median line per system:

    {"anchor":"dask","workload":"tree-50000","system":"sync","tasks":100006,
     "run":1,"seconds":...,"usPerTask":...}
    {"anchor":"dask","workload":"tree-50000","system":"sync","stat":"median",...}

Graph building and the plain-Python check are excluded from the timings.
`build_tree` and `eval_tree` are imported by dask_distributed.py.
"""

import argparse
import json
import statistics
import sys
import time


def inc(x):
    return x + 1


def add(x, y):
    return x + y


def build_tree(n, inc_fn=inc, add_fn=add):
    """tree-N: leaves ("inc-%d" % i) = (inc, i); then levels of add over pairs,
    the odd one out at a level gets inc; one root. Returns (graph, root_key)."""
    if n < 1:
        raise ValueError("n must be >= 1")
    graph = {}
    level = []
    for i in range(n):
        key = "inc-%d" % i
        graph[key] = (inc_fn, i)
        level.append(key)
    depth = 0
    while len(level) > 1:
        depth += 1
        nxt = []
        for j in range(0, len(level) - 1, 2):
            key = "add-%d-%d" % (depth, j // 2)
            graph[key] = (add_fn, level[j], level[j + 1])
            nxt.append(key)
        if len(level) % 2 == 1:
            key = "inc-%d-%d" % (depth, len(nxt))
            graph[key] = (inc_fn, level[-1])
            nxt.append(key)
        level = nxt
    return graph, level[0]


def eval_tree(n):
    """The same tree evaluated in plain Python (no Dask), for checking."""
    level = [i + 1 for i in range(n)]
    while len(level) > 1:
        nxt = [level[j] + level[j + 1] for j in range(0, len(level) - 1, 2)]
        if len(level) % 2 == 1:
            nxt.append(level[-1] + 1)
        level = nxt
    return level[0]


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def median_line(base, seconds, tasks):
    med = statistics.median(seconds)
    line = dict(base)
    line.update(
        {
            "stat": "median",
            "runs": len(seconds),
            "seconds": med,
            "usPerTask": med / tasks * 1e6,
        }
    )
    return line


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50000, help="leaves of tree-N")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="num_workers of dask.threaded.get")
    parser.add_argument(
        "--systems", default="sync,threaded", help="comma-separated subset of sync,threaded"
    )
    args = parser.parse_args(argv)

    import dask
    import dask.local
    import dask.threaded

    graph, root = build_tree(args.n)
    tasks = len(graph)
    expected = eval_tree(args.n)
    workload = "tree-%d" % args.n

    runners = {
        "sync": lambda: dask.local.get_sync(graph, root),
        "threaded": lambda: dask.threaded.get(graph, root, num_workers=args.threads),
    }
    systems = [s for s in args.systems.split(",") if s]
    for system in systems:
        if system not in runners:
            parser.error("unknown system %r" % system)

    for system in systems:
        run = runners[system]
        base = {
            "anchor": "dask",
            "workload": workload,
            "system": system,
            "tasks": tasks,
            "daskVersion": dask.__version__,
        }
        if system == "threaded":
            base["threads"] = args.threads
        seconds = []
        for r in range(args.repeat):
            t0 = time.perf_counter()
            result = run()
            dt = time.perf_counter() - t0
            if result != expected:
                raise SystemExit(
                    "%s: wrong result %r, expected %r" % (system, result, expected)
                )
            seconds.append(dt)
            line = dict(base)
            line.update({"run": r + 1, "seconds": dt, "usPerTask": dt / tasks * 1e6})
            emit(line)
        if seconds:
            emit(median_line(base, seconds, tasks))


if __name__ == "__main__":
    main()
