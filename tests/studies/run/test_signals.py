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
from studies.run.signals import Terminated, check_stop, hold_stop, release_stop


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


class _SignalledInDel:
    """Receives SIGTERM while Python runs its ``__del__``, where an exception is dropped."""

    def __del__(self) -> None:
        _sigterm_self()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the lost one
@pytest.mark.usefixtures("stop_handlers")
def test_a_stop_lost_in_a_finaliser_is_raised_by_check_stop() -> None:
    check_stop()  # no signal yet: nothing
    obj = _SignalledInDel()
    del obj  # the handler raises inside __del__: Python prints "Exception ignored" and goes on
    assert signals._HANDLER is not None and signals._HANDLER.received == signal.SIGTERM
    with pytest.raises(Terminated):
        check_stop()  # where training goes on (an epoch's end): the stop takes effect


@pytest.mark.usefixtures("stop_handlers")
def test_check_stop_leaves_a_held_signal_to_release() -> None:
    hold_stop()
    _sigterm_self()
    check_stop()  # held: the trial's end is being recorded
    with pytest.raises(Terminated):
        release_stop()


def test_check_stop_without_handlers_does_nothing() -> None:
    assert signals._HANDLER is None
    check_stop()
