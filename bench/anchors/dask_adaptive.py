#!/usr/bin/env python3
"""Anchor: the real Dask adaptive LocalCluster on sleep-burst (see /work/shared/BENCHMARKS.md).
Runs under Dask 2026.8 (the cached PyPI environment) or Debian's /usr/bin/python3:

    python bench/anchors/dask_adaptive.py --tasks 200 --sleep 1 \
        --maximum 20 --interval 1 --wait-count 3 --target-duration 5

LocalCluster(n_workers=0, threads_per_worker=1, processes=True) with
cluster.adapt(minimum, maximum, interval, wait_count, target_duration). All tasks
(each sleeps, then returns a small number) are submitted at once at t0.

Prints one JSON line (times in seconds, all measured from t0 unless stated):
  firstWorkerSeconds      t0 -> first worker registered with the scheduler
  firstResultSeconds      t0 -> first task result seen by the client
  totalSeconds            t0 -> last task result seen by the client
  peakWorkers             most workers registered at once (sampled, plus events)
  workerSeconds           sum over 100 ms samples of (registered workers x dt), from
                          t0 until the cluster is back at minimum (or the cap)
  workerSecondsToLastResult  the same, from t0 to the last result only
  processSeconds          like workerSeconds but counting worker processes the
                          cluster has asked for (incl. still starting / closing)
  scaleDownSeconds        last result -> cluster back at minimum (registered
                          workers == minimum and no worker processes beyond it);
                          null if not reached within --scale-down-cap (60 s)
  backAtMinimum, workersAtEnd
  settledSeconds          last result -> last change of the registered-worker count
                          within that wait (i.e. when scale-down stopped)
  resultsRetrievable      after the scale-down wait, gathering the same futures
                          again returns every correct value (within 60 s)
  statusesAfterScaleDown  future statuses just before that re-gather
  regatherSeconds, workersStartedForRegather  (>0 means Dask had to recompute
                          lost results on fresh workers)
  scaleDownAfterReleaseSeconds  after that, the futures are released: time until
                          the cluster is back at minimum (null if not within the cap).
                          Dask keeps workers that hold results the client still
                          references, so with minimum 0 it typically stops at 1
                          worker until the results are released.
"""

import argparse
import json
import logging
import sys
import threading
import time
import warnings
from collections import Counter


def slow_math(i, seconds):
    time.sleep(seconds)
    return i * i % 97 + 1


def expected_value(i):
    return i * i % 97 + 1


def make_worker_events():
    from distributed.diagnostics.plugin import SchedulerPlugin

    class WorkerEvents(SchedulerPlugin):
        """Added in-process to the LocalCluster's scheduler: timestamps worker
        arrivals and departures (monotonic clock, same process as the client)."""

        name = "tessera-anchor-worker-events"

        def __init__(self):
            self.lock = threading.Lock()
            self.added = []
            self.removed = []

        def add_worker(self, scheduler=None, worker=None, **kwargs):
            with self.lock:
                self.added.append(time.monotonic())

        def remove_worker(self, scheduler=None, worker=None, **kwargs):
            with self.lock:
                self.removed.append(time.monotonic())

    return WorkerEvents()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--sleep", type=float, default=1.0, help="seconds each task sleeps")
    parser.add_argument("--minimum", type=int, default=0)
    parser.add_argument("--maximum", type=int, default=20)
    parser.add_argument("--interval", type=float, default=1.0, help="adapt interval, seconds")
    parser.add_argument("--wait-count", type=int, default=3)
    parser.add_argument("--target-duration", type=float, default=5.0, help="seconds")
    parser.add_argument("--sample", type=float, default=0.1, help="sampling period, seconds")
    parser.add_argument("--scale-down-cap", type=float, default=60.0)
    parser.add_argument("--regather-timeout", type=float, default=60.0)
    args = parser.parse_args(argv)

    warnings.filterwarnings("ignore")
    logging.getLogger("distributed").setLevel(logging.CRITICAL)

    import dask
    import distributed
    from distributed import Client, LocalCluster, as_completed

    dask.config.set({"distributed.logging.distributed": "critical"})

    with LocalCluster(
        n_workers=0,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.CRITICAL,
    ) as cluster, Client(cluster) as client:
        events = make_worker_events()
        cluster.scheduler.add_plugin(events)
        cluster.adapt(
            minimum=args.minimum,
            maximum=args.maximum,
            interval="%gs" % args.interval,
            wait_count=args.wait_count,
            target_duration="%gs" % args.target_duration,
        )

        # Sampler: registered workers (scheduler side) and worker processes the
        # cluster manages (LocalCluster.workers: requested, starting, running).
        samples = []  # (monotonic, registered, processes)
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                samples.append(
                    (time.monotonic(), len(cluster.scheduler.workers), len(cluster.workers))
                )
                stop.wait(args.sample)

        t0 = time.monotonic()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        futures = client.map(slow_math, range(args.tasks), [args.sleep] * args.tasks, pure=False)
        index_of = {f.key: i for i, f in enumerate(futures)}
        first_result = None
        last_result = None
        wrong = 0
        for fut in as_completed(futures):
            now = time.monotonic()
            if first_result is None:
                first_result = now
            last_result = now
            if fut.result() != expected_value(index_of[fut.key]):
                wrong += 1
        if wrong:
            raise SystemExit("sleep-burst: %d wrong results" % wrong)

        # Wait until the cluster is back at its minimum (capped).
        back_at = None
        deadline = last_result + args.scale_down_cap
        while time.monotonic() < deadline:
            if (
                len(cluster.scheduler.workers) <= args.minimum
                and len(cluster.workers) <= args.minimum
            ):
                back_at = time.monotonic()
                break
            time.sleep(args.sample)
        end = time.monotonic()
        stop.set()
        sampler.join()
        workers_at_end = len(cluster.scheduler.workers)

        # Integrate the samples.
        def integrate(index, until):
            # index 1: registered workers, 2: worker processes; t0 <= samples < until
            total = 0.0
            for a, b in zip(samples, samples[1:]):
                if a[0] >= until:
                    break
                total += a[index] * (min(b[0], until) - a[0])
            return total

        # Last change of the registered-worker count during the scale-down wait
        # (useful when Dask settles above minimum: it keeps a worker for held results).
        settled = last_result
        for a, b in zip(samples, samples[1:]):
            if b[0] > last_result and b[1] != a[1]:
                settled = b[0]

        peak = max([s[1] for s in samples] + [0])
        with events.lock:
            added = list(events.added)
            removed = list(events.removed)
        # Exact peak from the event stream too (samples can miss short peaks).
        level = 0
        for _t, d in sorted([(t, 1) for t in added] + [(t, -1) for t in removed]):
            level += d
            # Last change of the registered-worker count during the scale-down wait
        # (useful when Dask settles above minimum: it keeps a worker for held results).
        settled = last_result
        for a, b in zip(samples, samples[1:]):
            if b[0] > last_result and b[1] != a[1]:
                settled = b[0]

        peak = max(peak, level)
        first_worker = min((t for t in added if t >= t0), default=None)

        # Are the results still retrievable after scale-down?
        statuses = Counter(f.status for f in futures)
        n_added_before = len(added)
        r0 = time.monotonic()
        retrievable = False
        regather_error = None
        try:
            distributed.wait(futures, timeout=args.regather_timeout)
            values = client.gather(futures)
            retrievable = all(v == expected_value(i) for i, v in enumerate(values))
        except Exception as exc:  # timeout, lost/cancelled futures, ...
            regather_error = "%s: %s" % (type(exc).__name__, exc)
        regather = time.monotonic() - r0
        with events.lock:
            started_for_regather = len(events.added) - n_added_before

        # Dask keeps a worker alive while it holds results the client still wants;
        # so also measure how long scale-down to minimum takes once they are released.
        del futures, fut
        rel0 = time.monotonic()
        released_back = None
        while time.monotonic() < rel0 + args.scale_down_cap:
            if (
                len(cluster.scheduler.workers) <= args.minimum
                and len(cluster.workers) <= args.minimum
            ):
                released_back = time.monotonic() - rel0
                break
            time.sleep(args.sample)

        line = {
            "anchor": "dask",
            "workload": "sleep-burst",
            "system": "adaptive",
            "tasks": args.tasks,
            "sleepSeconds": args.sleep,
            "minimum": args.minimum,
            "maximum": args.maximum,
            "interval": args.interval,
            "waitCount": args.wait_count,
            "targetDuration": args.target_duration,
            "firstWorkerSeconds": None if first_worker is None else first_worker - t0,
            "firstResultSeconds": first_result - t0,
            "totalSeconds": last_result - t0,
            "peakWorkers": peak,
            "workerSeconds": integrate(1, end),
            "workerSecondsToLastResult": integrate(1, last_result),
            "processSeconds": integrate(2, end),
            "scaleDownSeconds": None if back_at is None else back_at - last_result,
            "backAtMinimum": back_at is not None,
            "workersAtEnd": workers_at_end,
            "settledSeconds": settled - last_result,
            "resultsRetrievable": retrievable,
            "statusesAfterScaleDown": dict(statuses),
            "regatherSeconds": regather,
            "workersStartedForRegather": started_for_regather,
            "scaleDownAfterReleaseSeconds": released_back,
            "daskVersion": dask.__version__,
            "distributedVersion": distributed.__version__,
        }
        if regather_error is not None:
            line["regatherError"] = regather_error
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
