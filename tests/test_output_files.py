"""Output files (-o, --plot, --boxes, report -o) are written whole or not at all: through
links to their regular target, never over a FIFO or device, keeping the file's mode, and
no temporary file is left behind when the process is interrupted or killed."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys

import pytest

from cli_run import run


def test_a_link_is_written_through_to_its_target(capsys, tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    code, _, err = run(capsys, "analyze", "example:seed2", "--json", "-o", str(link))
    assert code == 0, err
    assert link.is_symlink() and '"conv3"' in target.read_text()


@pytest.mark.parametrize("how", ["fifo", "link-to-fifo", "directory"])
def test_a_fifo_or_directory_is_refused(capsys, tmp_path, how):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    out = {"fifo": fifo, "directory": tmp_path}.get(how, tmp_path / "link")
    if how == "link-to-fifo":
        out.symlink_to(fifo)
    code, stdout, err = run(capsys, "analyze", "example:seed2", "-o", str(out))
    assert code == 2 and stdout == "" and "cannot write" in err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["fifo"] + (["link"] if how == "link-to-fifo" else []))


def test_the_mode_of_an_existing_file_is_kept(capsys, tmp_path):
    out = tmp_path / "private.txt"
    out.write_text("old")
    out.chmod(0o600)
    code, _, err = run(capsys, "analyze", "example:seed2", "-o", str(out))
    assert code == 0, err
    assert stat.S_IMODE(out.stat().st_mode) == 0o600 and "conv3" in out.read_text()


KILL_DURING_WRITE = """
import os, signal, sys
import rfield.safeio as s
real_replace = os.replace
def replace(src, dst):
    # killed after the data, before the rename; raise_signal delivers it to this thread
    # now (os.kill may land on another thread, the handler then running after the rename)
    signal.raise_signal(getattr(signal, sys.argv[1]))
    real_replace(src, dst)
s.os.replace = replace
from rfield.cli import main
sys.exit(main(["analyze", "example:resnet18", "--json", "-o", sys.argv[2]]))
"""


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_no_temporary_file_is_left_when_killed_mid_write(tmp_path, sig):
    out = tmp_path / "out.json"
    out.write_text("old")
    proc = subprocess.run([sys.executable, "-c", KILL_DURING_WRITE, sig, str(out)],
                          capture_output=True, text=True, timeout=60)
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
    if signal.getsignal(getattr(signal, sig)) == signal.SIG_IGN:
        # ignored here (SIGHUP under nohup), and so in the child: the write completes
        assert proc.returncode == 0, proc.stderr
        assert out.read_text() != "old"
        return
    expected = 130 if sig == "SIGINT" else -getattr(signal, sig)
    assert proc.returncode == expected, proc.stderr
    assert out.read_text() == "old"


def test_an_ignored_signal_stays_ignored_while_writing(tmp_path):
    """Under nohup SIGHUP is ignored: a write it arrives during completes."""
    out = tmp_path / "out.json"
    out.write_text("old")
    proc = subprocess.run([sys.executable, "-c", KILL_DURING_WRITE, "SIGHUP", str(out)],
                          capture_output=True, text=True, timeout=60,
                          preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
    assert out.read_text() != "old"


def test_a_new_file_gets_the_mode_the_umask_gives(capsys, tmp_path):
    out = tmp_path / "new.txt"
    old = os.umask(0o027)
    try:
        code, _, err = run(capsys, "analyze", "example:seed2", "-o", str(out))
    finally:
        os.umask(old)
    assert code == 0, err
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
