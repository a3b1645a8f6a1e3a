"""The summary table of bench/results.json: `make bench` prints it after running every benchmark.

Run: `PYTHONPATH=layers/common:. .venv/bin/python -m bench.report` (reads results.json, runs nothing).
"""

from __future__ import annotations

import json
from typing import Any

from bench.harness import RESULTS


def _verdict(met: object) -> str:
    return "ok" if met else "MISSED"


def table(results: dict[str, Any]) -> list[str]:
    header = (
        f"{'benchmark':<38} {'subject p50':>11} {'p95':>9} {'floor p50':>10} {'p95':>9} {'ratio':>6} {'target':>7}  met"
    )
    lines = [header, "-" * len(header)]
    for name, row in sorted(results.get("benchmarks", {}).items()):
        lines.append(
            f"{name:<38} {row['subject_p50_ms']:>8.2f} ms {row['subject_p95_ms']:>6.2f} ms "
            f"{row['floor_p50_ms']:>7.2f} ms {row['floor_p95_ms']:>6.2f} ms {row['ratio']:>6.2f} "
            f"{'<= ' + str(row['target']):>7}  {_verdict(row['met'])}"
        )
    sweep = results.get("reminder_sweep")
    if sweep:
        small, large = sweep["sizes"]
        lines.append(
            f"{'reminder_sweep_items_read_over_due':<38} {large['items_read']:>8} it {'':>9} "
            f"{large['due']:>7} due {'':>9} {sweep['items_read_over_due']:>6.2f} "
            f"{'<= ' + str(sweep['items_read_target']):>7}  {_verdict(sweep['items_read_over_due'] <= 1.05)}"
        )
        lines.append(
            f"{'reminder_sweep_time_100k_over_10k':<38} {large['sweep_s'] * 1000:>8.0f} ms {'':>9} "
            f"{small['sweep_s'] * 1000:>7.0f} ms {'':>9} {sweep['sweep_time_ratio']:>6.2f} "
            f"{'<= ' + str(sweep['sweep_time_target']):>7}  {_verdict(sweep['sweep_time_ratio'] <= 1.2)}"
        )
    lines.append("")
    cold = results.get("cold_start")
    if cold:
        lines.append(f"webhook cold start without httpx / X-Ray SDK: {_verdict(cold['webhook_without_httpx'])}")
    throughput = results.get("webhook_throughput")
    if throughput:
        proof = throughput["proof"]
        proved = all(value is not False for value in proof.values())
        lines.append(
            f"webhook throughput: {throughput['events_per_second']} events/s over {throughput['deliveries']} "
            f"deliveries ({throughput['duplicates']} redeliveries, {throughput['late_deliveries']} late; "
            f"min {throughput['window_events_per_second_min']}/s per 1000), downstream published "
            f"{throughput['downstream_published']}; stored once + newest state: {_verdict(proved)} "
            "(moto, per-item transaction journal)"
        )
    reconcile = results.get("reconcile")
    if reconcile:
        lines.append(
            f"reconcile: drift found = injected {_verdict(reconcile['drift_exact'])} ({reconcile['drift_found']}); "
            f"Meld requests / needed {reconcile['requests_over_needed']} (<= {reconcile['requests_target']}) "
            f"{_verdict(reconcile['requests_over_needed'] <= reconcile['requests_target'])}; "
            f"{reconcile['seconds']} s for {reconcile['connections']} connections (moto + simulator)"
        )
    surge = results.get("surge")
    if surge:
        lines.append(
            f"surge: {surge['connections']} break, {surge['healed']} heal; messages {surge['messages_sent']} = still "
            f"broken {surge['still_broken_at_hold_end']} {_verdict(surge['sent_to_exactly_the_still_broken'])}; "
            f"<= 1 per customer {_verdict(surge['most_messages_to_one_customer'] <= 1)}; most sends in a second "
            f"{surge['most_sends_in_one_second']} (<= {surge['send_rate_per_second']}) "
            f"{_verdict(surge['most_sends_in_one_second'] <= surge['send_rate_per_second'])}; webhooks acknowledged "
            f"{surge['acknowledged']}/{surge['webhooks']}; {surge['seconds']} s (moto)"
        )
    prompt = results.get("prompt_round_trip")
    if prompt:
        lines.append(
            f"prompt round trip (Chromium, local stack): widget login to 'Reconnected' p50 {prompt['p50_seconds']} s, "
            f"p95 {prompt['p95_seconds']} s over {prompt['runs']} repairs"
        )
    layer = results.get("layer_size")
    if layer:
        lines.append(
            f"layer size: {layer['zipped_bytes']:,} bytes zipped (deflated), {layer['unzipped_bytes']:,} unzipped, "
            f"{layer['files']} files, {len(layer.get('modules_without_bytecode', []))} modules without bytecode"
        )
    machine = results.get("machine")
    if machine:
        lines.append(f"machine: {machine.get('cpus')} CPUs, Python {machine['python']}, {machine['platform']}")
    return lines


def main() -> None:
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    print("\n".join(table(results)))


if __name__ == "__main__":
    main()
