"""Training is never harmed: whatever goes wrong with the store or flortrace itself, the script's output and
exit code are those of ``python script.py``, flortrace says what happened in one line, and the store stays
readable. Also: bad input to the verbs is one line and exit code 2, having changed nothing."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from flortrace.runtime import session

TIMEOUT = 120


def run(cwd, *args, store=None, timeout=TIMEOUT, **kw):
    """``python -m flortrace *args`` in ``cwd`` with the store at ``cwd/.store`` (or ``store``)."""
    env = dict(os.environ, FLORTRACE_STORE=str(store or cwd / ".store"))
    env.pop("FLORTRACE_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "flortrace", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,
    )


def plain(cwd, *args):
    """``python *args``: what the script does without flortrace."""
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT)


def flortrace_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("flortrace:")]


def store_digest(store):
    """A digest of the store's files, to see it unchanged (lock files come and go; the WAL is empty once
    no process has the catalog open)."""
    h = hashlib.sha256()
    files = (p for p in store.rglob("*") if p.is_file() and p.parent.name not in ("locks", "tmp"))
    for path in sorted(p for p in files if not p.name.endswith(("-wal", "-shm"))):
        h.update(str(path.relative_to(store)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


TRAIN = textwrap.dedent(
    """\
    import sys
    import flortrace

    state = {"w": 0.0}
    for epoch in range(4):
        for i in range(20):
            state["w"] += i * 0.001
        flortrace.log("w", state["w"])
        print("epoch", epoch, round(state["w"], 6))
    sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    """
)


@pytest.fixture
def project(tmp_path):
    (tmp_path / "train.py").write_text(TRAIN)
    return tmp_path


# ---- a store that cannot be used, or fills up ------------------------------------------------------------


def _userns_tmpfs():
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1)")
    if subprocess.run(["unshare", "-Urm", "true"], capture_output=True).returncode != 0:
        pytest.skip("user namespaces are not available")


# Runs inside a private user and mount namespace: mounts a 4 MiB tmpfs (private to its owner, as flortrace
# makes a new store) and runs the steps there: ["fill"] fills it up, ["free"] frees it, anything else is a
# flortrace command line. Prints one JSON result per step.
IN_NAMESPACE = """
import glob, json, os, subprocess, sys
mount, steps = sys.argv[1], json.loads(sys.argv[2])
done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mount], capture_output=True)
if done.returncode:
    print(json.dumps({"mount": done.stderr.decode()}))
    sys.exit(0)
os.chmod(mount, 0o700)
filler = os.path.join(mount, "filler")
results = []
for step in steps:
    if step == ["fill"]:
        try:
            with open(filler, "ab") as f:
                while True:
                    f.write(b"x" * 4096)
                    f.flush()
        except OSError:
            pass
        results.append(None)
    elif step == ["free"]:  # also the copy a replay wrote: it redirects the script's files into the store
        redirected = os.path.join(mount, "s", "replays", "*", "files", "small", "*")
        for path in glob.glob(filler) + glob.glob(redirected):
            os.unlink(path)
        results.append(None)
    else:
        out = subprocess.run([sys.executable, "-m", "flortrace", "--store", mount + "/s", *step],
                             capture_output=True, text=True, timeout=120)
        results.append({"rc": out.returncode, "stdout": out.stdout, "stderr": out.stderr})
print(json.dumps({"results": results}))
"""


def in_namespace(cwd, steps):
    _userns_tmpfs()
    mount = cwd / "small"
    mount.mkdir()
    done = subprocess.run(
        ["unshare", "-Urm", sys.executable, "-c", IN_NAMESPACE, str(mount), json.dumps(steps)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT * len(steps),
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    if "mount" in answer:
        pytest.skip(f"cannot mount a tmpfs: {answer['mount'].strip()[-200:]}")
    return answer["results"]


FILLS_UP = textwrap.dedent(
    """\
    import sys
    import flortrace

    state = {"w": 0.0}
    for epoch in range(5):
        for i in range(2500):  # enough rows that the catalog writes during every epoch
            state["w"] += i * 1e-6
            flortrace.log("w", state["w"])
        if epoch == 1:  # something else fills the disk the store is on
            try:
                with open(sys.argv[1], "wb") as f:
                    while True:
                        f.write(b"x" * 65536)
            except OSError:
                pass
        print("epoch", epoch, round(state["w"], 6), flush=True)
    """
)


def test_store_that_fills_up_during_the_run_stops_the_recording_not_the_training(tmp_path):
    (tmp_path / "fill.py").write_text(FILLS_UP)
    want = plain(tmp_path, "fill.py", "/dev/full")  # writing there fails with ENOSPC, as on the full disk
    edited = FILLS_UP.replace('print("epoch"', 'flortrace.log("w2", state["w"] * 2)\n    print("epoch"')
    (tmp_path / "edited.py").write_text(edited)
    filler = str(tmp_path / "small" / "filler")
    record, runs_full, _, runs, logs, replay, _, after = in_namespace(
        tmp_path,
        [
            ["--overhead", "0", "fill.py", filler],
            ["runs", "--json"],
            ["free"],
            ["runs", "--json"],
            ["logs", "--format", "json"],
            ["replay", "--run", "1", "--force", "edited.py", filler],  # fills the disk again as it runs
            ["free"],
            ["logs", "--format", "json"],
        ],
    )
    assert (record["rc"], record["stdout"]) == (want.returncode, want.stdout) and want.returncode == 0
    assert "Traceback" not in record["stderr"]
    stopped, end = flortrace_lines(record["stderr"])
    assert stopped.startswith("flortrace: recording stopped at epoch") and "is full" in stopped
    where = stopped.removeprefix("flortrace: recording stopped ").split(",")[0]
    assert end == f"flortrace: run 1 is incomplete: the recording stopped {where} (see above)"
    # Readable while the disk is full, and after: the run reads as crashed, what was committed is there.
    assert runs_full["rc"] == 0 and json.loads(runs_full["stdout"])[0]["status"] == "crashed"
    (run,) = json.loads(runs["stdout"])
    assert run["status"] == "crashed" and run["epochs"] >= 1 and run["logs"] >= 2000
    values = [r["value"] for r in json.loads(logs["stdout"])]
    assert values == sorted(values) and len(values) == run["logs"]
    # Replay on a full store: the script's output, then one line; the store is as before.
    assert (
        replay["stdout"].startswith("epoch 0 ") and replay["rc"] == 2 and "Traceback" not in replay["stderr"]
    )
    assert flortrace_lines(replay["stderr"])[-1].startswith("flortrace: error: the store at")
    assert "is full" in replay["stderr"] and after["stdout"] == logs["stdout"]


def test_full_store_at_the_start_runs_the_script_unrecorded(tmp_path):
    (tmp_path / "train.py").write_text(TRAIN)
    want = plain(tmp_path, "train.py", "3")
    _, record, runs = in_namespace(tmp_path, [["fill"], ["train.py", "3"], ["runs"]])
    assert (record["rc"], record["stdout"]) == (3, want.stdout)
    first, last = flortrace_lines(record["stderr"])
    assert first.startswith("flortrace: warning: nothing is being recorded: ") and "full" in first
    assert last.startswith("flortrace: warning: this run was not recorded: ") and "full" in last
    assert "Traceback" not in record["stderr"] and runs["rc"] == 2 and len(runs["stderr"].splitlines()) == 1


def _someone_elses(path):
    if os.geteuid() != 0:
        pytest.skip("giving a folder to another user needs root")
    os.chown(path, 4242, 4242)


@pytest.mark.parametrize("problem", ["a file", "group-writable", "someone else's", "damaged"])
def test_unusable_store_at_the_start_runs_the_script_unrecorded(project, problem):
    store = project / ".store"
    if problem == "a file":
        store.write_text("not a folder")
    elif problem == "damaged":
        store.mkdir(mode=0o700)
        (store / "catalog.sqlite").write_bytes(b"\0" * 4096)
    else:
        assert run(project, "-q", "train.py").returncode == 0
        if problem == "group-writable":
            store.chmod(0o770)
        else:
            _someone_elses(store)
    before = store_digest(store) if store.is_dir() else store.read_text()
    want = plain(project, "train.py", "3")
    out = run(project, "train.py", "3")
    assert (out.returncode, out.stdout) == (3, want.stdout) and "Traceback" not in out.stderr
    first, last = flortrace_lines(out.stderr)
    assert first.startswith("flortrace: warning: nothing is being recorded: ")
    assert last == first.replace("nothing is being recorded", "this run was not recorded")
    assert (store_digest(store) if store.is_dir() else store.read_text()) == before


# ---- the script forks, logs odd names, drops its streams, is interrupted ---------------------------------

FORKS = textwrap.dedent(
    """\
    import os
    import sys
    import flortrace

    for epoch in range(4):
        for i in range(3):
            flortrace.log("v", epoch * 10 + i)
        if epoch == 1:
            pid = os.fork()
            if pid == 0:
                print("child", flush=True)
                sys.exit(0)  # the child leaves through the loop: its finalizers run in the child
            os.waitpid(pid, 0)
        print("epoch", epoch, flush=True)
    """
)


@pytest.mark.parametrize("overhead", ["0", "9"])
def test_forked_child_never_touches_the_store(project, overhead):
    (project / "fork.py").write_text(FORKS)
    want = plain(project, "fork.py")
    out = run(project, "-q", "--overhead", overhead, "fork.py", timeout=60)
    assert (out.returncode, out.stdout, out.stderr) == (0, want.stdout, "")
    (only,) = json.loads(run(project, "runs", "--json").stdout)
    assert only["status"] == "finished" and only["epochs"] == 4
    rows = json.loads(run(project, "logs", "--format", "json").stdout)
    assert sorted(r["value"] for r in rows) == [e * 10 + i for e in range(4) for i in range(3)]


ODD = textwrap.dedent(
    """\
    import flortrace


    class NoRepr:
        def __repr__(self):
            raise RuntimeError("no repr")


    total = 0
    for epoch in range(3):
        for i in range(5):
            total += i
        flortrace.log("f\\udcff", total)
        flortrace.log("\\x1bflortrace-text:41", epoch)
        flortrace.log("odd", NoRepr())
        print(epoch, total)
    """
)


def test_odd_log_names_and_values_are_stored_and_never_stop_training(project):
    (project / "odd.py").write_text(ODD)
    out = run(project, "-q", "odd.py")
    assert (out.returncode, out.stdout, out.stderr) == (0, plain(project, "odd.py").stdout, "")
    rows = json.loads(run(project, "logs", "--format", "json").stdout)
    by_name = {}
    for r in rows:
        by_name.setdefault(r["name"], []).append(r["value"])
    assert by_name["f\udcff"] == [10, 20, 30] and by_name["\x1bflortrace-text:41"] == [0, 1, 2]
    assert by_name["odd"] == ["<NoRepr object: repr() failed with RuntimeError('no repr')>"] * 3
    table = run(project, "logs", "--name", "f\udcff")
    assert table.returncode == 0 and "f\\udcff" in table.stdout


def test_script_with_an_undecodable_name_records_and_replays(tmp_path):
    name = os.fsdecode(b"tr\xffin.py")
    (tmp_path / name).write_text(TRAIN.replace('flortrace.log("w", state["w"])', "pass"))
    want = plain(tmp_path, name)
    out = run(tmp_path, "-q", name)
    assert (out.returncode, out.stdout, out.stderr) == (0, want.stdout, "")
    (recorded,) = json.loads(run(tmp_path, "runs", "--json").stdout)
    assert recorded["script"] == str(tmp_path / name) and recorded["epochs"] == 4
    (tmp_path / name).write_text(TRAIN)
    replayed = run(tmp_path, "replay", "-q", name)
    assert (replayed.returncode, replayed.stdout) == (0, want.stdout), replayed.stderr
    assert len(json.loads(run(tmp_path, "logs", "--format", "json").stdout)) == 4


@pytest.mark.parametrize(
    "ending", ["sys.stderr.close()", "sys.stdout = None", "sys.stdout.close()", "sys.stderr = None"]
)
def test_script_that_drops_its_streams_keeps_its_exit_code(project, ending):
    (project / "drop.py").write_text(TRAIN.replace("sys.exit(", f"{ending}\nsys.exit("))
    want = plain(project, "drop.py", "4")
    out = run(project, "drop.py", "4")
    assert want.returncode == 4 and (out.returncode, out.stdout) == (4, want.stdout)
    assert "Traceback" not in out.stderr
    assert json.loads(run(project, "runs", "--json").stdout)[0]["exit_code"] == 4


def test_ctrl_c_caught_by_a_loop_finalizer_is_raised_again_in_the_script(monkeypatch):
    """A KeyboardInterrupt raised inside __del__ is dropped by Python ("Exception ignored in ..."): the Ctrl-C
    would be lost. It is raised again in the main thread, outside the finalizer."""
    ignored = []
    monkeypatch.setattr(sys, "unraisablehook", ignored.append)

    def interrupted(act):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        end = session._LoopEnd(interrupted, None)
        del end  # runs __del__, which catches the interrupt
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(0.01)
    assert ignored == []


SLOW = textwrap.dedent(
    """\
    import time
    print("start", flush=True)
    for epoch in range(1000):
        for i in range(100):
            if i == 50:
                break  # every block ends in its finalizer
        time.sleep(0.001)
    """
)


def test_ctrl_c_while_recording_ends_like_python(project):
    (project / "slow.py").write_text(SLOW)
    env = dict(os.environ, FLORTRACE_STORE=str(project / ".store"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "flortrace", "-q", "slow.py"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline() == "start\n"
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGINT
    assert (
        "Exception ignored" not in err
        and "flortrace/" not in err
        and err.rstrip().endswith("KeyboardInterrupt")
    )
    (only,) = json.loads(run(project, "runs", "--json").stdout)
    assert only["status"] == "failed" and only["exit_code"] == 130 and only["epochs"] > 0


# ---- what the user types --------------------------------------------------------------------------------


def test_a_script_that_cannot_start_leaves_no_run(project):
    assert run(project, "-q", "train.py").returncode == 0
    (project / "broken.py").write_text("for epoch in range(3):\n    print(epoch\n")
    for args, code in (("missing.py",), 2), (("-m", "no_such_module"), 1), (("broken.py",), 1):
        out = run(project, "-q", *args)
        python = plain(project, *args)
        assert (out.returncode, out.stdout, out.stderr) == (code, python.stdout, python.stderr)
    assert [r["id"] for r in json.loads(run(project, "runs", "--json").stdout)] == [1]
    rows = json.loads(run(project, "logs", "--format", "json").stdout)
    assert len(rows) == 4 and {r["run"] for r in rows} == {1}


def test_a_verb_after_flortraces_options_is_the_verb(project):
    assert run(project, "-q", "train.py").returncode == 0
    other = project / "other"
    out = run(project, "--store", str(project / ".store"), "show", "1", store=other)
    assert out.returncode == 0 and out.stdout.startswith("run 1  finished") and not other.exists()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("recorded")
    (cwd / "train.py").write_text(TRAIN)
    (cwd / "adir").mkdir()
    assert run(cwd, "-q", "train.py").returncode == 0
    return cwd


@pytest.mark.parametrize(
    "args, message",
    [
        (("show", "99999999999999999999999"), "there is no run 99999999999999999999999"),
        (("show", "abc"), "'abc' is not a run id"),
        (
            ("logs", "-o", "/nonexistent-dir/x.json", "--format", "json"),
            "there is no folder /nonexistent-dir",
        ),
        (("logs", "--run", "999"), "no run 999"),
        (("logs", "--epochs", "5:2"), "epoch spec '5:2' selects no epoch"),
        (("export", "csv", "/nonexistent-dir/x.csv"), "there is no folder /nonexistent-dir"),
        (("export", "json", "adir"), "cannot write adir: it is a folder"),
        (("export", "csv", "x.csv", "--run", "999"), "no run 999"),
        (("replay", "--segment", "abc", "train.py"), "--segment must be INDEX/COUNT"),
        (("replay", "--segment", "5/2", "train.py"), "--segment must be INDEX/COUNT"),
        (("replay", "--epochs", "5:2", "train.py"), "epoch spec '5:2' selects no epoch (run 1)"),
        (("replay", "--epochs", "", "train.py"), "--epochs needs epochs"),
        (("replay", "--tolerance", "-1", "train.py"), "tolerance must be 0 or more"),
        (("replay", "--run", "999", "train.py"), "no run 999"),
        (("rm", "1", "999"), "no run 999"),
        (("rm", "0"), "there is no run 0"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(recorded, args, message):
    before = store_digest(recorded / ".store")
    out = run(recorded, *args)
    assert out.returncode == 2 and out.stdout == ""
    (line,) = out.stderr.splitlines()
    assert line.startswith("flortrace: error: ") and message in line
    assert store_digest(recorded / ".store") == before and not (recorded / "x.csv").exists()
