"""An operator tool that cannot reach its stack says why in a sentence and exits 1, never with a traceback."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from ops import inspect, replay
from ops.stack import run_tool


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("tool", [inspect.main, replay.main])
def test_a_local_stack_that_is_not_running_is_named_as_the_cause(
    tool: Callable[[list[str]], int], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCAL_AWS_PORT", str(closed_port()))

    assert run_tool(tool, ["CONNECTION=conn-1"]) == 1

    err = capsys.readouterr().err
    assert "is the local stack running (make run)?" in err
    assert "Traceback" not in err


def test_a_profile_that_does_not_exist_is_said(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")

    assert run_tool(inspect.main, ["CONNECTION=conn-1", "STACK=production"]) == 1

    assert "AWS configuration: The config profile (no-such-profile) could not be found" in capsys.readouterr().err
