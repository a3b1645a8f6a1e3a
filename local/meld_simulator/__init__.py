"""A Meld Bank Linking simulator for local runs and end-to-end tests.

Meld's sandbox cannot put a connection into RECONNECT_REQUIRED, so this serves Meld's real endpoints on 127.0.0.1,
lets tests drive connection states through ``/_sim/*`` control endpoints, and sends correctly signed webhooks.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python -m local.meld_simulator` runs without pytest's pythonpath; the signing code lives in the Lambda layer.
_LAYER = Path(__file__).resolve().parents[2] / "layers" / "common"
if _LAYER.is_dir() and str(_LAYER) not in sys.path:
    try:
        import connection_repair  # noqa: F401
    except ImportError:
        sys.path.append(str(_LAYER))

from local.meld_simulator.config import Clock, SimulatorConfig  # noqa: E402
from local.meld_simulator.server import MeldSimulator  # noqa: E402

__all__ = ["Clock", "MeldSimulator", "SimulatorConfig"]
