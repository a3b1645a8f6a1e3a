"""``python -m local.meld_simulator``: serve until SIGINT/SIGTERM. Configured from the environment (see config)."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from local.meld_simulator.config import SimulatorConfig
from local.meld_simulator.server import MeldSimulator


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = SimulatorConfig.from_env()
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    simulator = MeldSimulator(config).start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        simulator.stop()


if __name__ == "__main__":
    main()
