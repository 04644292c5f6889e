"""The contended mode: a seeded CPU-bound busy loop beside a benchmark run.

    python -m benchmarks._contend SEED

Prints :data:`READY` once its loop is running, then spins until killed: a
stream of ``random.Random(SEED)`` numbers folded through integer arithmetic
and SHA-256, always the same work for the same seed (nothing it computes is
kept; the point is the CPU it takes). ``python -m benchmarks`` starts one
beside every run of a contended case (see :class:`Contender`), pinned with the
worker to one core, and kills it when the run ends.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from pathlib import Path

READY = "@@CONTENDING"


def spin(seed: int) -> None:
    """Burn CPU forever, deterministically for *seed*."""
    rng = random.Random(seed)
    bits = rng.getrandbits
    sha = hashlib.sha256
    state = seed & 0xFFFFFFFF
    sys.stdout.write(READY + "\n")
    sys.stdout.flush()
    while True:
        # Mostly interpreted arithmetic (as a busy Python neighbour would
        # be), with a little hashing so the work is not one tight opcode loop.
        for _ in range(1000):
            state = (state * 1103515245 + bits(32)) & 0xFFFFFFFF
        state ^= int.from_bytes(sha(state.to_bytes(4, "little")).digest()[:4], "little")


def pinned_cpu() -> int | None:
    """The core a contended run is pinned to, or ``None`` where pinning is absent.

    One busy process beside the run on a many-core machine would take a
    core of its own and compete for nothing; pinned to the same core, the
    run gets about half of it on any machine. It is the last core this
    process may use.
    """
    if not hasattr(os, "sched_getaffinity"):
        return None
    return max(os.sched_getaffinity(0))


class Contender:
    """The busy-loop process of one contended run: a context manager.

    Starts ``python -m benchmarks._contend <seed>`` pinned to *cpu* (if not
    ``None``), waits until its loop runs, and on exit kills it and reaps it.
    """

    def __init__(self, seed: int, cpu: int | None, root: Path) -> None:
        self.seed = seed
        self.cpu = cpu
        self.root = root
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Contender:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(self.root), env.get("PYTHONPATH")) if p
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._contend", str(self.seed)],
            cwd=self.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        if self.cpu is not None:
            os.sched_setaffinity(self.process.pid, {self.cpu})
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith(READY):
            self.__exit__()
            raise RuntimeError("the contending busy loop did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def main(argv: list[str]) -> None:
    spin(int(argv[0]) if argv else 0)


if __name__ == "__main__":
    main(sys.argv[1:])
