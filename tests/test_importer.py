"""instrument.importer and instrument.editables: which modules are instrumented, wherever they are imported
from: the project folder, the source folders of editable installs (as pip writes them), and the packages
``include`` names, even in site-packages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap

from flortrace.instrument import editables
from flortrace.instrument.importer import InstrumentingFinder, ProjectFilter

FINDER = """\
import sys
from importlib.machinery import PathFinder
from importlib.util import spec_from_file_location
from pathlib import Path

MAPPING = {mapping!r}


class _EditableFinder:  # what setuptools writes for a flat layout (__editable___NAME_finder.py), trimmed
    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname in MAPPING:
            init = Path(MAPPING[fullname]) / "__init__.py"
            return spec_from_file_location(fullname, init) if init.exists() else None
        parent, _, child = fullname.rpartition(".")
        if parent and parent in MAPPING:
            return PathFinder.find_spec(fullname, path=[MAPPING[parent]])
        return None


def install():
    if not any(finder == _EditableFinder for finder in sys.meta_path):
        sys.meta_path.append(_EditableFinder)
"""


def editable_install(site, project, package, layout="flat"):
    """Write into ``site`` what ``pip install -e project`` writes (setuptools' editable wheel): a dist-info
    with direct_url.json, and either a .pth with the source folder (src layout) or a .pth that installs an
    __editable__ finder mapping the package to its folder (flat layout)."""
    site.mkdir(parents=True, exist_ok=True)
    info = site / f"{package}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n")
    (info / "direct_url.json").write_text(
        json.dumps({"dir_info": {"editable": True}, "url": project.as_uri()})
    )
    if layout == "src":
        (site / f"__editable__.{package}-0.1.pth").write_text(str(project / "src") + "\n")
        return
    finder = f"__editable___{package}_0_1_finder"
    (site / f"{finder}.py").write_text(FINDER.format(mapping={package: str(project / package)}))
    (site / f"__editable__.{package}-0.1.pth").write_text(f"import {finder}; {finder}.install()\n")


def site_env(tmp_path, site):
    """Environment under which Python processes ``site`` like a site-packages folder (its .pth files)."""
    boot = tmp_path / "boot"
    boot.mkdir(exist_ok=True)
    (boot / "sitecustomize.py").write_text(f"import site\nsite.addsitedir({str(site)!r})\n")
    path = os.pathsep.join(p for p in [str(boot), os.environ.get("PYTHONPATH", "")] if p)
    return dict(os.environ, PYTHONPATH=path, PYTHONHASHSEED="0")


def test_editable_source_folders_come_from_direct_url_json(tmp_path):
    site, project, other = tmp_path / "site", tmp_path / "proj", tmp_path / "other"
    (project / "pkg").mkdir(parents=True)
    other.mkdir()
    editable_install(site, project, "pkg")
    plain = site / "plain-1.0.dist-info"  # installed from a folder, not editable: not the user's code
    plain.mkdir()
    (plain / "direct_url.json").write_text(json.dumps({"dir_info": {}, "url": other.as_uri()}))
    broken = site / "broken-1.0.dist-info"
    broken.mkdir()
    (broken / "direct_url.json").write_text("{not json")
    assert editables.source_folders([str(site), str(tmp_path / "missing")]) == [str(project.resolve())]


def test_the_filter_takes_editable_folders_and_included_packages(tmp_path):
    root, project = tmp_path / "proj" / "scripts", tmp_path / "proj"
    root.mkdir(parents=True)
    purelib = sysconfig.get_paths()["purelib"]
    pf = ProjectFilter(root, include=["somepkg.loops", "models/*.py"], editable=[project])
    assert pf.packages == ["somepkg.loops"] and pf.include == ["models/*.py"]
    assert pf.wants(str(project / "mypkg" / "trainer.py"))  # under an editable source folder
    assert pf.relative(str(project / "mypkg" / "trainer.py")) == str(
        project.resolve() / "mypkg" / "trainer.py"
    )
    assert not pf.wants(str(root / "train.py"))  # the glob keeps only the project files it matches
    assert pf.wants(str(root / "models" / "net.py"))
    assert pf.wants(os.path.join(purelib, "somepkg", "loops", "fit.py"), "somepkg.loops.fit")
    assert not pf.wants(os.path.join(purelib, "somepkg", "data.py"), "somepkg.data")
    assert not pf.wants(os.path.join(purelib, "other", "x.py"), "other.x")
    assert not ProjectFilter(root, exclude=["*trainer.py"], editable=[project]).wants(
        str(project / "mypkg" / "trainer.py")
    )


def test_glob_include_keeps_its_meaning(tmp_path):
    pf = ProjectFilter(tmp_path, include=["train.py", "lib/*"])
    assert (
        pf.packages == []
        and pf.wants(str(tmp_path / "train.py"))
        and pf.wants(str(tmp_path / "lib" / "a.py"))
    )
    assert not pf.wants(str(tmp_path / "other.py"))


SCRIPT = """\
import json, sys
from flortrace.instrument.importer import InstrumentingFinder, ProjectFilter
from flortrace.instrument import editables

seen = []
def patch(code, path, source):
    seen.append(path)
    return code

finder = InstrumentingFinder(ProjectFilter(sys.argv[1], sys.argv[2:], (), editables.source_folders()), patch)
finder.install()
import flatpkg.trainer, srcpkg.trainer, wsgiref.util, textwrap
print(json.dumps(sorted(seen)))
"""


def test_modules_of_editable_installs_and_included_packages_are_patched(tmp_path):
    site = tmp_path / "site"
    for package, layout in (("flatpkg", "flat"), ("srcpkg", "src")):
        project = tmp_path / f"{package}-project"
        folder = project / ("src" if layout == "src" else "") / package
        folder.mkdir(parents=True)
        (folder / "__init__.py").write_text("")
        (folder / "trainer.py").write_text("def fit():\n    for e in range(2):\n        pass\n")
        editable_install(site, project, package, layout)
    scripts = tmp_path / "flatpkg-project" / "scripts"
    scripts.mkdir()
    (scripts / "run.py").write_text(textwrap.dedent(SCRIPT))
    out = subprocess.run(
        [sys.executable, "run.py", str(scripts), "wsgiref"],
        cwd=scripts,
        env=site_env(tmp_path, site),
        capture_output=True,
        text=True,
        check=True,
    )
    seen = [os.path.relpath(p, tmp_path) for p in json.loads(out.stdout.splitlines()[-1])]
    assert "flatpkg-project/flatpkg/trainer.py" in seen and "srcpkg-project/src/srcpkg/trainer.py" in seen
    assert any(p.endswith(os.path.join("wsgiref", "util.py")) for p in seen)  # included, from the stdlib
    assert not any(p.endswith("textwrap.py") for p in seen)
    assert not any("flortrace" in p.split(os.sep)[-2:] for p in seen)


def test_a_finder_without_extra_roots_leaves_libraries_to_python(tmp_path):
    finder = InstrumentingFinder(ProjectFilter(tmp_path), lambda code, path, source: code)
    assert finder.find_spec("json") is None
