"""Settings precedence: flags > FLORTRACE_* > [tool.flortrace] > defaults."""

import pytest

from flortrace import config


def test_precedence(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.flortrace]\noverhead = 0.1\nstore = "from-toml"\n')
    monkeypatch.delenv("FLORTRACE_STORE", raising=False)
    monkeypatch.setenv("FLORTRACE_OVERHEAD", "0.2")
    s = config.load({}, start=tmp_path)
    assert s["store"] == "from-toml" and s["overhead"] == 0.2
    s = config.load({"overhead": 0.3, "store": None}, start=tmp_path)
    assert s["overhead"] == 0.3 and s["store"] == "from-toml"


def test_defaults(tmp_path, monkeypatch):
    for key in config.DEFAULTS:
        monkeypatch.delenv("FLORTRACE_" + key.upper(), raising=False)
    assert config.load({}, start=tmp_path)["store"] == ".flortrace"


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
