"""runtime/files.py: during replay the script's writes under its folders go to the replay's folder, reads
see them there, removals and renames only hide the originals; everything else is left alone."""

from __future__ import annotations

import json
import os
import pathlib
import shutil

import pytest

from flortrace.runtime.files import _REAL, Overlay


def original(path):
    """What is on disk at ``path`` (the patched functions would show the overlay)."""
    with _REAL["open"](path) as f:
        return f.read()


def on_disk(path):
    try:
        _REAL["lstat"](path)
    except FileNotFoundError:
        return False
    return True


@pytest.fixture
def overlay(tmp_path, monkeypatch):
    project = tmp_path / "proj"
    (project / "sub").mkdir(parents=True)
    (project / "a.txt").write_text("recorded")
    (project / "sub" / "k.txt").write_text("kept")
    (project / ".cache").mkdir()
    monkeypatch.chdir(project)
    written = []
    o = Overlay(project / ".store" / "replays" / "files", [project], [project / "keep-out"], written.append)
    o.install()
    yield o, project, o.folder, written
    o.uninstall()


def files(folder):
    """The files in the overlay's folder (kept out of the overlay itself: plain listing works)."""
    return sorted(str(p.relative_to(folder)) for p in pathlib.Path(folder).rglob("*") if p.is_file())


def test_writes_go_to_the_overlay_and_reads_see_them(overlay):
    o, project, moved, written = overlay
    with open("a.txt", "w") as f:
        f.write("replayed")
    assert open("a.txt").read() == "replayed" and original(project / "a.txt") == "recorded"
    with open("a.txt", "a") as f:
        f.write("+")
    assert pathlib.Path("a.txt").read_text() == "replayed+"
    with open("sub/k.txt", "a") as f:  # appending starts from the original
        f.write("+")
    assert open("sub/k.txt").read() == "kept+" and original(project / "sub" / "k.txt") == "kept"
    pathlib.Path("new/deep/b.json").parent.mkdir(parents=True)
    pathlib.Path("new/deep/b.json").write_text(json.dumps([1]))
    assert os.path.isfile("new/deep/b.json") and json.load(open("new/deep/b.json")) == [1]
    assert not on_disk(project / "new")
    fd = os.open("c.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.write(fd, b"x")
    os.close(fd)
    assert files(moved) == ["a.txt", "c.bin", "new/deep/b.json", "sub/k.txt"]
    assert [os.path.relpath(p, project) for p in written] == ["a.txt", "sub/k.txt", "new", "new/deep"] + [
        "new/deep/b.json",
        "c.bin",
    ]


def test_exclusive_and_missing_files_fail_as_they_would(overlay):
    o, project, moved, _ = overlay
    with pytest.raises(FileExistsError):
        open("a.txt", "x")
    with pytest.raises(FileExistsError):
        os.mkdir("sub")
    os.makedirs("sub", exist_ok=True)
    with pytest.raises(FileNotFoundError):
        open("nothing.txt")
    with pytest.raises(FileNotFoundError):
        open("nothing.txt", "r+")
    with pytest.raises(FileNotFoundError):
        os.remove("nothing.txt")
    assert files(moved) == []


def test_removing_and_renaming_only_hide_the_originals(overlay):
    o, project, moved, _ = overlay
    os.remove("a.txt")
    assert not os.path.exists("a.txt") and original(project / "a.txt") == "recorded"
    with pytest.raises(FileNotFoundError):
        open("a.txt")
    with open("a.txt", "w") as f:  # written again after removing it
        f.write("again")
    assert open("a.txt").read() == "again"
    os.replace("sub/k.txt", "moved.txt")
    assert open("moved.txt").read() == "kept" and not os.path.exists("sub/k.txt")
    assert on_disk(project / "sub" / "k.txt") and not on_disk(project / "moved.txt")
    shutil.rmtree("sub")
    assert not os.path.exists("sub")
    os.mkdir("sub")
    assert os.path.isdir("sub") and not os.path.exists("sub/k.txt")  # a new folder: empty
    with open("tmp.json", "w") as f:  # write, then rename over: the atomic-save pattern
        f.write("{}")
    os.replace("tmp.json", "a.txt")
    assert open("a.txt").read() == "{}" and not os.path.exists("tmp.json")
    assert original(project / "a.txt") == "recorded" and on_disk(project / "sub" / "k.txt")


def test_what_is_left_alone(overlay, tmp_path):
    o, project, moved, written = overlay
    (project / ".cache" / "c").write_text("hidden folders are the script's")  # the store, caches, .git
    with open(".cache/c", "w") as f:
        f.write("changed")
    (project / "keep-out").mkdir()
    with open("keep-out/x", "w") as f:
        f.write("kept out")
    outside = tmp_path / "elsewhere.txt"
    with open(outside, "w") as f:
        f.write("outside the guarded folders")
    assert original(project / ".cache" / "c") == "changed" and on_disk(project / "keep-out" / "x")
    assert on_disk(outside) and written == [] and files(moved) == []


def test_torch_save_is_redirected(overlay):
    torch = pytest.importorskip("torch")
    o, project, moved, _ = overlay
    torch.save({"w": torch.ones(2)}, "ckpt.pt")
    assert files(moved) == ["ckpt.pt"] and not on_disk(project / "ckpt.pt")
    assert torch.equal(torch.load("ckpt.pt")["w"], torch.ones(2))


def test_uninstall_puts_everything_back(tmp_path):
    real = (open, os.open, os.stat, os.replace, shutil.rmtree)
    o = Overlay(tmp_path / "o", [tmp_path], [], lambda path: None)
    o.install()
    assert open is not real[0]
    o.uninstall()
    assert (open, os.open, os.stat, os.replace, shutil.rmtree) == real
