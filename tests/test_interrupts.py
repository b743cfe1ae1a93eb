"""Ctrl-C is never swallowed: an interrupt raised where Python cannot propagate it (a
``__del__``, as happens inside TensorFlow and coremltools) is raised again at the next check."""
import os
import signal

import pytest


@pytest.fixture
def sigint_restored():
    from edgematting import interrupts

    old = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, old)
    interrupts._pending.clear()


def test_a_ctrl_c_swallowed_in_a_finalizer_is_raised_again(sigint_restored, capsys):
    from edgematting import interrupts

    interrupts.install()

    class Finalized:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)  # the handler's KeyboardInterrupt lands in __del__

    obj = Finalized()
    del obj  # Python would print "Exception ignored in: ..." and carry on
    assert interrupts.interrupted()
    with pytest.raises(KeyboardInterrupt):
        interrupts.check()
    assert "Exception ignored" not in capsys.readouterr().err


def test_the_cli_ends_an_interrupted_command_with_130(sigint_restored, monkeypatch, capsys):
    """A command whose Ctrl-C a library swallowed does not report success."""
    from edgematting import interrupts
    from edgematting.cli import cmd_summary, main

    def swallowed(args):
        interrupts._pending.set()  # as the finalizer above does
        return 0

    monkeypatch.setattr(cmd_summary, "run", swallowed)
    assert main(["summary", "--model", "fast-scnn"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_an_interrupt_is_delivered_once(sigint_restored):
    """After the CLI (or anyone) has caught the re-raised interrupt, later work in the same
    process is not interrupted by it: a conversion in the next test once was."""
    from edgematting import interrupts

    interrupts.install()
    interrupts._pending.set()
    with pytest.raises(KeyboardInterrupt):
        interrupts.check()
    assert not interrupts.interrupted()
    interrupts.check()  # nothing pending: returns


def test_the_cli_leaves_no_interrupt_pending(sigint_restored, monkeypatch, capsys):
    from edgematting import interrupts
    from edgematting.cli import cmd_summary, main

    monkeypatch.setattr(cmd_summary, "run", lambda args: interrupts._pending.set() or 0)
    assert main(["summary", "--model", "fast-scnn"]) == 130
    assert not interrupts.interrupted()
