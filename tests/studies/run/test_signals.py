"""The stop handlers of studies.run.signals, installed in this process (fixture
``stop_handlers``): a real signal sent to the test process itself, never a call of the
handler by hand.

SIGTERM only: a test run started in the background by a shell has SIGINT ignored, and the
handlers keep it so (see `install_stop_handlers`).
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from studies.run import signals
from studies.run.signals import Terminated, hold_stop, release_stop


def _sigterm_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.05)  # the handler runs in this (main) thread at the next bytecode


@pytest.mark.usefixtures("stop_handlers")
def test_first_sigterm_raises_later_ones_are_ignored() -> None:
    with pytest.raises(Terminated):
        _sigterm_self()
    _sigterm_self()  # already stopping: ignored, the cleanup goes on


@pytest.mark.usefixtures("stop_handlers")
def test_a_held_signal_is_raised_at_release() -> None:
    hold_stop()
    _sigterm_self()  # recorded, not raised
    with pytest.raises(Terminated):
        release_stop()
    release_stop()  # nothing pending any more: a second release raises nothing
    _sigterm_self()  # the process is stopping: later signals are ignored


@pytest.mark.usefixtures("stop_handlers")
def test_release_without_a_signal_raises_nothing_and_ends_the_hold() -> None:
    hold_stop()
    release_stop()
    with pytest.raises(Terminated):
        _sigterm_self()  # no longer held: raised at once


@pytest.mark.usefixtures("stop_handlers")
def test_a_held_signal_is_dropped_where_another_exception_is_on_its_way() -> None:
    hold_stop()
    _sigterm_self()
    release_stop(raise_pending=False)
    release_stop()  # dropped, not kept for later
    _sigterm_self()  # still stopping: ignored


def test_hold_and_release_without_handlers_do_nothing() -> None:
    assert signals._HANDLER is None
    hold_stop()
    release_stop()
    assert signals._HANDLER is None
