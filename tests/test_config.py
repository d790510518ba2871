"""Settings precedence: flags > FLORTRACE_* > [tool.flortrace] > defaults."""

import pytest

from flortrace import config


def test_precedence(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.flortrace]\noverhead = 0.1\nstore = "from-toml"\n')
    monkeypatch.delenv("FLORTRACE_STORE", raising=False)
    monkeypatch.setenv("FLORTRACE_OVERHEAD", "0.2")
    s = config.load({}, start=tmp_path)
    assert s.store == "from-toml" and s.overhead == 0.2
    s = config.load({"overhead": 0.3, "store": None}, start=tmp_path)
    assert s.overhead == 0.3 and s.store == "from-toml"


def test_defaults(tmp_path, monkeypatch):
    for key in config.CONFIGURABLE:
        monkeypatch.delenv("FLORTRACE_" + key.upper(), raising=False)
    assert config.load({}, start=tmp_path).store == ".flortrace"


@pytest.mark.parametrize(
    "toml", ["[tool.flortrace]\nbogus = 1\n", '[tool.flortrace]\noverhead = "x"\n', "[[bad"]
)
def test_bad_pyproject_is_a_clear_error(tmp_path, toml):
    (tmp_path / "pyproject.toml").write_text(toml)
    with pytest.raises(config.ConfigError):
        config.load({}, start=tmp_path)


def test_bad_env(monkeypatch, tmp_path):
    monkeypatch.setenv("FLORTRACE_OVERHEAD", "lots")
    with pytest.raises(config.ConfigError, match="FLORTRACE_OVERHEAD"):
        config.load({}, start=tmp_path)


def test_every_setting_typed_from_pyproject(tmp_path, monkeypatch):
    for key in config.CONFIGURABLE:
        monkeypatch.delenv("FLORTRACE_" + key.upper(), raising=False)
    (tmp_path / "pyproject.toml").write_text(
        "[tool.flortrace]\n"
        'store = "s"\noverhead = 0.1\nquiet = "yes"\ninclude = "a,b"\nexclude = ["c"]\nworkers = "3"\n'
        'backend = "ray"\ntolerance = 1\nepoch_loop = "train.py:12"\nisolate = false\n'
    )
    s = config.load({"workers": 2}, start=tmp_path, name="label")
    assert (s.store, s.overhead, s.quiet, s.include, s.exclude) == ("s", 0.1, True, ["a", "b"], ["c"])
    assert (s.workers, s.backend, s.tolerance) == (2, "ray", 1.0)
    assert (s.epoch_loop, s.isolate) == ("train.py:12", False)
    assert (s.name, s.address, s.overlay) == ("label", None, None)
    with pytest.raises(AttributeError):  # built once: nothing adds to it or changes it later
        s.workers = 4


def test_a_verb_only_setting_is_not_configurable(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.flortrace]\nname = "x"\n')
    with pytest.raises(config.ConfigError, match="unknown setting"):
        config.load({}, start=tmp_path)
