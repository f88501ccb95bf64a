#!/usr/bin/env python3
"""Anchor: dask-jobqueue's SLURMCluster on sleep-burst (see /work/shared/BENCHMARKS.md),
on the same Slurm and with the same settings as Tessera's SlurmCluster in the same run.

    python bench/anchors/dask_jobqueue.py --mode adaptive --tasks 200 --sleep 1 --maximum 20 \
        --cores 1 --memory 400MB --walltime 00:30:00 --slurm-conf /tmp/.../slurm.conf \
        --log-directory /tmp/logs --job-name dask-burst [--site DIR]

--site DIR is put first on the import path: where bench/slurm.ts installed dask-jobqueue
(`pip install --target`, beside the anchors' environment, which holds dask and distributed).

SLURMCluster(cores, processes=1, memory, walltime, queue, job_name, log_directory) with its
scheduler on 127.0.0.1 and every other setting at dask-jobqueue's defaults (a nanny per
worker, as users get it). One worker per job, so workers and jobs count alike.

--mode adaptive: cluster.adapt(minimum=0, maximum, interval, wait_count, target_duration)
from zero jobs; all tasks submitted at t0. --mode fixed: cluster.scale(maximum), every worker
joined, then the same tasks. Prints one JSON line (seconds, from t0 unless stated):
  firstJobRunningSeconds   t0 -> first job of this name RUNNING in squeue (sampled every 0.1 s)
  firstWorkerSeconds       t0 -> first worker registered with the scheduler
  firstResultSeconds, totalSeconds, peakWorkers, jobsSubmitted
  backToFloorSeconds       last result -> at most one job left and one worker (Dask keeps a
                           worker for the results the client holds); null past the cap
  resultsRetrievable       gathering the same futures again after that returns every value
  startAllWorkersSeconds   (fixed) scale(maximum) -> every worker registered
  jobsLeftAfterClose       jobs of this name still pending, running or completing once
                           cluster.close() returned; queueEmptySecondsAfterClose: until none is
"""

import argparse
import json
import logging
import os
import subprocess
import sys
import threading
import time
import warnings

# This file's name is the package's: keep its directory off the path, so that
# `import dask_jobqueue` finds the package rather than this script.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]


def slow_math(i, seconds):
    time.sleep(seconds)
    return i * i % 97 + 1


def expected_value(i):
    return i * i % 97 + 1


class QueueWatch(threading.Thread):
    """Samples squeue for this job name: when a job first runs, and every job id seen."""

    def __init__(self, job_name, period):
        super().__init__(daemon=True)
        self.job_name = job_name
        self.period = period
        self.first_running = None
        self.ids = set()
        self.stop = threading.Event()

    def jobs(self, states):
        out = subprocess.run(
            ["squeue", "-h", "-r", "-t", states, "-n", self.job_name, "-o", "%i|%T"],
            capture_output=True, text=True, check=False,
        ).stdout
        return [line.split("|") for line in out.split("\n") if "|" in line]

    def run(self):
        while not self.stop.is_set():
            for job_id, state in self.jobs("all"):
                self.ids.add(job_id)
                if state == "RUNNING" and self.first_running is None:
                    self.first_running = time.monotonic()
            self.stop.wait(self.period)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["adaptive", "fixed"], default="adaptive")
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--sleep", type=float, default=1.0)
    parser.add_argument("--maximum", type=int, default=20)
    parser.add_argument("--cores", type=int, default=1)
    parser.add_argument("--memory", default="400MB")
    parser.add_argument("--walltime", default="00:30:00")
    parser.add_argument("--partition", default=None)
    parser.add_argument("--slurm-conf", default=None)
    parser.add_argument("--log-directory", default=None)
    parser.add_argument("--job-name", default="dask-burst")
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--wait-count", type=int, default=3)
    parser.add_argument("--target-duration", type=float, default=5.0)
    parser.add_argument("--settle-cap", type=float, default=60.0)
    parser.add_argument("--site", default=None)
    args = parser.parse_args(argv)
    if args.site is not None:
        sys.path.insert(0, args.site)

    warnings.filterwarnings("ignore")
    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    if args.slurm_conf is not None:
        os.environ["SLURM_CONF"] = args.slurm_conf

    import dask
    import dask_jobqueue
    import distributed
    from dask_jobqueue import SLURMCluster
    from distributed import Client, as_completed

    watch = QueueWatch(args.job_name, 0.1)
    cluster = SLURMCluster(
        cores=args.cores,
        processes=1,
        memory=args.memory,
        walltime=args.walltime,
        queue=args.partition,
        job_name=args.job_name,
        log_directory=args.log_directory,
        python=sys.executable,
        scheduler_options={"host": "127.0.0.1", "dashboard": False},
        silence_logs="critical",
    )
    line = {
        "anchor": "dask-jobqueue",
        "workload": "sleep-burst",
        "mode": args.mode,
        "tasks": args.tasks,
        "sleepSeconds": args.sleep,
        "maximum": args.maximum,
        "daskVersion": dask.__version__,
        "distributedVersion": distributed.__version__,
        "daskJobqueueVersion": dask_jobqueue.__version__,
        "jobScript": cluster.job_script(),
    }
    try:
        client = Client(cluster)
        registered = lambda: len(cluster.scheduler.workers)  # noqa: E731
        watch.start()
        if args.mode == "fixed":
            s0 = time.monotonic()
            cluster.scale(args.maximum)
            client.wait_for_workers(args.maximum, timeout=300)
            line["startAllWorkersSeconds"] = time.monotonic() - s0
        else:
            cluster.adapt(
                minimum=0,
                maximum=args.maximum,
                interval="%gs" % args.interval,
                wait_count=args.wait_count,
                target_duration="%gs" % args.target_duration,
            )

        peak = [0]
        first_worker = [None]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                n = registered()
                peak[0] = max(peak[0], n)
                if n > 0 and first_worker[0] is None:
                    first_worker[0] = time.monotonic()
                stop.wait(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        t0 = time.monotonic()
        sampler.start()
        futures = client.map(slow_math, range(args.tasks), [args.sleep] * args.tasks, pure=False)
        index_of = {f.key: i for i, f in enumerate(futures)}
        first_result = None
        for fut in as_completed(futures):
            if first_result is None:
                first_result = time.monotonic()
            if fut.result() != expected_value(index_of[fut.key]):
                raise SystemExit("sleep-burst: wrong result")
        last_result = time.monotonic()

        back = None
        if args.mode == "adaptive":
            while time.monotonic() < last_result + args.settle_cap:
                if registered() <= 1 and len(watch.jobs("PENDING,RUNNING,COMPLETING")) <= 1:
                    back = time.monotonic() - last_result
                    break
                time.sleep(0.1)
        stop.set()
        sampler.join()
        try:
            values = client.gather(futures)
            retrievable = all(v == expected_value(i) for i, v in enumerate(values))
        except Exception:  # lost results, timeouts
            retrievable = False

        start = lambda t: None if t is None else t - t0  # noqa: E731
        line.update(
            {
                "firstJobRunningSeconds": start(watch.first_running) if args.mode == "adaptive" else None,
                "firstWorkerSeconds": start(first_worker[0]) if args.mode == "adaptive" else None,
                "firstResultSeconds": first_result - t0,
                "totalSeconds": last_result - t0,
                "peakWorkers": peak[0],
                "backToFloorSeconds": back,
                "resultsRetrievable": retrievable,
            }
        )
        client.close()
    finally:
        watch.stop.set()
        cluster.close()
        closed = time.monotonic()
        line["jobsSubmitted"] = len(watch.ids)
        line["jobsLeftAfterClose"] = len(watch.jobs("PENDING,RUNNING,COMPLETING"))
        while watch.jobs("PENDING,RUNNING,COMPLETING") and time.monotonic() < closed + args.settle_cap:
            time.sleep(0.1)
        line["queueEmptySecondsAfterClose"] = time.monotonic() - closed
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
