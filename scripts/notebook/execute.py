"""Executes a notebook with Jupyter's own executor (nbclient) and writes what happened as JSON.

    python execute.py NOTEBOOK --out RESULT.json [--cwd DIR] [--kernel NAME]
                      [--cell-timeout S] [--startup-timeout S] [--drain-ms MS] [--allow-errors]

The result holds:
  notebook   the executed notebook, as nbclient saves it. nbclient folds every
             update_display_data into the output it updates, so the saved notebook alone
             cannot tell an update in place from a display that was right the first time;
  messages   every IOPub message the kernel sent (status messages aside), in arrival order,
             with the cell whose execute request it answers, its display_id (transient,
             never saved in the notebook) and its MIME bundle: the proof of in-place updates;
  kernel     the kernel's pid and language_info;
  processes  every process seen in the kernel's process tree while it ran (sampled), with
             its start time so that a reused pid is not mistaken for it;
  leftover   those of them still alive after the kernel was shut down;
  error      the first cell error when --allow-errors is not given, else null.

It exits 0 whenever it could write the result (a failing cell is reported in `error`), and
non-zero only when it could not run at all.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import sys
import threading
import time
from typing import Any

import nbformat
from nbclient import NotebookClient
from jupyter_core.utils import ensure_async
from nbclient.exceptions import CellExecutionComplete, CellExecutionError

STARTED = time.monotonic()


def elapsed_ms() -> float:
    return round((time.monotonic() - STARTED) * 1000, 3)


def proc_stat(pid: int) -> tuple[int, int] | None:
    """(ppid, starttime) of a live process, from /proc (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces or parentheses.
    fields = raw[raw.rindex(")") + 2 :].split()
    state = fields[0]
    if state in ("Z", "X"):
        return None
    return int(fields[1]), int(fields[19])


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


class ProcessWatch:
    """Samples the kernel's process tree so that children that come and go are all known."""

    def __init__(self, root: int, every: float = 0.1) -> None:
        self.root = root
        self.every = every
        self.seen: dict[tuple[int, int], str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def sample(self) -> None:
        children: dict[int, list[tuple[int, int]]] = {}
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            stat = proc_stat(int(name))
            if stat is not None:
                children.setdefault(stat[0], []).append((int(name), stat[1]))
        root_stat = proc_stat(self.root)
        if root_stat is None:
            return
        stack = [(self.root, root_stat[1])]
        while stack:
            pid, start = stack.pop()
            if (pid, start) not in self.seen:
                self.seen[(pid, start)] = cmdline(pid)
            stack.extend(children.get(pid, []))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def alive(self) -> list[tuple[int, int]]:
        return [(pid, start) for (pid, start) in self.seen if (proc_stat(pid) or (0, -1))[1] == start]


KEPT = ("execution_state", "name", "text", "data", "metadata", "transient", "execution_count", "ename", "evalue", "traceback", "wait")


class RecordingClient(NotebookClient):
    """nbclient's executor, recording every IOPub message it reads and the kernel's processes."""

    def __init__(self, nb: Any, **kw: Any) -> None:
        super().__init__(nb, **kw)
        self.messages: list[dict[str, Any]] = []
        self.cell_of_request: dict[str, int] = {}
        self.current_cell: int | None = None
        self.kernel_pid: int | None = None
        self.watch: ProcessWatch | None = None
        self.failed_cell: int | None = None
        self.finished_cells: set[int] = set()

    def record(self, msg: dict[str, Any]) -> None:
        msg_type = msg["header"]["msg_type"]
        parent = (msg.get("parent_header") or {}).get("msg_id")
        cell_index = self.cell_of_request.get(parent) if parent else None
        content = msg.get("content") or {}
        transient = content.get("transient") or {}
        late = cell_index is not None and cell_index in self.finished_cells
        entry: dict[str, Any] = {
            "t": elapsed_ms(),
            "cell": cell_index,
            "msg_type": msg_type,
            "display_id": transient.get("display_id"),
            "late": late,
        }
        # Deep copies: nbclient rewrites update_display_data's header and reuses content.
        entry.update({k: copy.deepcopy(content[k]) for k in KEPT if k in content})
        self.messages.append(entry)
        if late and msg_type not in ("status", "execute_input"):
            self.attach_late(msg, cell_index)

    def attach_late(self, msg: dict[str, Any], cell_index: int) -> None:
        """Gives a cell an output its kernel sent after reporting the cell idle.

        nbclient stops listening to a cell at its idle status and drops what follows, but a
        front end such as JupyterLab routes every output by its parent request and shows it.
        Deno's kernel publishes outputs on another path than its status messages, so a
        cell's execute_result now and then trails its idle status by a few milliseconds; and
        whatever a timer displays after a notebook's last cell arrives after idle too. Kept
        here, as a person would see it, and marked late in the record.
        """
        cell = self.nb.cells[cell_index]
        try:
            self.process_message(msg, cell, cell_index)
        except CellExecutionComplete:
            pass

    async def async_start_new_kernel(self, **kwargs: Any) -> None:
        await super().async_start_new_kernel(**kwargs)
        provisioner = getattr(self.km, "provisioner", None)
        process = getattr(provisioner, "process", None)
        self.kernel_pid = getattr(process, "pid", None)
        if self.kernel_pid is not None:
            self.watch = ProcessWatch(self.kernel_pid)
            self.watch.sample()

    async def async_start_new_kernel_client(self) -> Any:
        kc = await super().async_start_new_kernel_client()
        get_msg = kc.iopub_channel.get_msg
        execute = kc.execute

        async def recording_get_msg(*args: Any, **kwargs: Any) -> Any:
            msg = await get_msg(*args, **kwargs)
            self.record(msg)
            return msg

        def recording_execute(*args: Any, **kwargs: Any) -> Any:
            msg_id = execute(*args, **kwargs)
            if self.current_cell is not None:
                self.cell_of_request[msg_id] = self.current_cell
            return msg_id

        kc.iopub_channel.get_msg = recording_get_msg
        kc.execute = recording_execute
        return kc

    async def async_execute_cell(self, cell: Any, cell_index: int, *args: Any, **kwargs: Any) -> Any:
        self.current_cell = cell_index
        try:
            return await super().async_execute_cell(cell, cell_index, *args, **kwargs)
        except BaseException:
            self.failed_cell = cell_index
            raise
        finally:
            self.finished_cells.add(cell_index)
            if self.watch is not None:
                self.watch.sample()

    async def drain(self, quiet_ms: int) -> None:
        """Reads IOPub until it stays quiet for `quiet_ms`: what came after the last cell."""
        if self.kc is None or quiet_ms <= 0:
            return
        while True:
            try:
                await self.kc.iopub_channel.get_msg(timeout=quiet_ms / 1000)
            except Exception:  # queue.Empty: quiet long enough
                return

    async def run(self, cwd: str, drain_ms: int) -> None:
        self.reset_execution_trackers()
        async with self.async_setup_kernel(cwd=cwd):
            assert self.kc is not None
            msg_id = await ensure_async(self.kc.kernel_info())
            info = await self.async_wait_for_reply(msg_id)
            if info is not None and "language_info" in info["content"]:
                self.nb.metadata["language_info"] = info["content"]["language_info"]
            try:
                for index, cell in enumerate(self.nb.cells):
                    await self.async_execute_cell(cell, index, execution_count=self.code_cells_executed + 1)
            finally:
                self.current_cell = None
                await self.drain(drain_ms)
                if self.watch is not None:
                    self.watch.sample()


def main() -> int:
    parser = argparse.ArgumentParser(description="Execute a notebook with nbclient and record its IOPub messages.")
    parser.add_argument("notebook")
    parser.add_argument("--out", required=True)
    parser.add_argument("--cwd", default=None)
    parser.add_argument("--kernel", default=None, help="kernelspec name (default: the notebook's)")
    parser.add_argument("--cell-timeout", type=float, default=120)
    parser.add_argument("--startup-timeout", type=float, default=60)
    parser.add_argument("--drain-ms", type=int, default=0, help="read IOPub after the last cell until quiet this long")
    parser.add_argument("--exit-grace", type=float, default=10, help="seconds the kernel's processes get to leave after shutdown")
    parser.add_argument("--allow-errors", action="store_true")
    args = parser.parse_args()

    nb = nbformat.read(args.notebook, as_version=4)
    cwd = args.cwd or os.path.dirname(os.path.abspath(args.notebook))
    options: dict[str, Any] = {
        "timeout": args.cell_timeout,
        "startup_timeout": args.startup_timeout,
        "allow_errors": args.allow_errors,
        "shutdown_kernel": "graceful",
        "record_timing": False,
    }
    if args.kernel:
        options["kernel_name"] = args.kernel
    client = RecordingClient(nb, resources={"metadata": {"path": cwd}}, **options)

    error: dict[str, Any] | None = None
    try:
        asyncio.run(client.run(cwd, args.drain_ms))
    except CellExecutionError as e:
        error = {"cell": client.failed_cell, "ename": e.ename, "evalue": e.evalue, "traceback": e.traceback}
    except Exception as e:  # a dead kernel, a timeout: still write what was seen
        error = {"cell": client.failed_cell, "ename": type(e).__name__, "evalue": str(e), "traceback": ""}

    leftover: list[dict[str, Any]] = []
    if client.watch is not None:
        client.watch.stop()
        deadline = time.monotonic() + args.exit_grace
        while client.watch.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        leftover = [{"pid": pid, "starttime": start, "cmdline": client.watch.seen[(pid, start)]} for pid, start in client.watch.alive()]

    result = {
        "notebook": nb,
        "messages": client.messages,
        "kernel": {"pid": client.kernel_pid, "language_info": nb.metadata.get("language_info")},
        "processes": [{"pid": pid, "starttime": start, "cmdline": cmd} for (pid, start), cmd in (client.watch.seen.items() if client.watch else [])],
        "leftover": leftover,
        "error": error,
    }
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
