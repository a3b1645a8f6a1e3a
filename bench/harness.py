"""Interleaved subject-vs-floor timing: both warm, alternated, so machine noise hits both alike."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.json"


@dataclass(frozen=True)
class Comparison:
    name: str
    subject_p50_ms: float
    subject_p95_ms: float
    floor_p50_ms: float
    floor_p95_ms: float
    ratio: float
    target: float
    iterations: int

    @property
    def met(self) -> bool:
        return self.ratio <= self.target

    def line(self) -> str:
        verdict = "ok" if self.met else "MISSED"
        return (
            f"{self.name:<34} subject p50 {self.subject_p50_ms:8.3f} ms  p95 {self.subject_p95_ms:8.3f} ms | "
            f"floor p50 {self.floor_p50_ms:8.3f} ms  p95 {self.floor_p95_ms:8.3f} ms | "
            f"ratio {self.ratio:5.2f} (target <= {self.target}) {verdict}"
        )


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def compare(
    name: str,
    subject: Callable[[int], object],
    floor: Callable[[int], object],
    *,
    target: float,
    iterations: int = 400,
    warmup: int = 50,
    between: Callable[[int], object] | None = None,
) -> Comparison:
    """Time ``subject(i)`` and ``floor(i)`` alternately, ``iterations`` times each after ``warmup`` rounds.

    ``between(i)``, untimed, runs after each pair (e.g. to keep a table at a steady size).
    """
    for i in range(warmup):
        subject(i)
        floor(i)
        if between:
            between(i)
    subject_ms: list[float] = []
    floor_ms: list[float] = []
    for i in range(warmup, warmup + iterations):
        first, second, first_samples, second_samples = (
            (subject, floor, subject_ms, floor_ms) if i % 2 else (floor, subject, floor_ms, subject_ms)
        )
        start = time.perf_counter()
        first(i)
        middle = time.perf_counter()
        second(i)
        end = time.perf_counter()
        first_samples.append((middle - start) * 1000)
        second_samples.append((end - middle) * 1000)
        if between:
            between(i)
    return summarise(name, subject_ms, floor_ms, target=target)


def summarise(name: str, subject_ms: list[float], floor_ms: list[float], *, target: float) -> Comparison:
    """p50/p95 of samples taken elsewhere (e.g. in child processes), interleaved by the caller."""
    subject_p50, floor_p50 = statistics.median(subject_ms), statistics.median(floor_ms)
    return Comparison(
        name=name,
        subject_p50_ms=round(subject_p50, 4),
        subject_p95_ms=round(_percentile(subject_ms, 0.95), 4),
        floor_p50_ms=round(floor_p50, 4),
        floor_p95_ms=round(_percentile(floor_ms, 0.95), 4),
        ratio=round(subject_p50 / floor_p50, 3),
        target=target,
        iterations=len(subject_ms),
    )


def record(comparisons: list[Comparison], extra: dict[str, dict[str, object]] | None = None) -> None:
    """Merge these results into bench/results.json (one entry per benchmark name, or per ``extra`` section).

    Entries carry ``recorded_at``: results.json merges runs, so an entry a later run did not redo shows its age.
    """
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    benchmarks = existing.get("benchmarks", {})
    recorded_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    for comparison in comparisons:
        benchmarks[comparison.name] = asdict(comparison) | {"met": comparison.met, "recorded_at": recorded_at}
    existing["benchmarks"] = benchmarks
    existing["machine"] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
    }
    if extra:
        existing.update({section: values | {"recorded_at": recorded_at} for section, values in extra.items()})
    RESULTS.write_text(json.dumps(existing, indent=2, sort_keys=True) + "\n")
