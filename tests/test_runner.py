"""The runner in process: which file a script path means, and the exit codes Python gives its endings."""

from __future__ import annotations

import pytest

from flortrace import runner


def test_a_script_is_a_file_or_a_folder_with_main(tmp_path):
    (tmp_path / "train.py").write_text("")
    assert runner.resolve_script(str(tmp_path / "train.py")) == str(tmp_path / "train.py")
    (tmp_path / "app").mkdir()
    with pytest.raises(runner.NoScript, match="can't find '__main__' module") as missing_main:
        runner.resolve_script(str(tmp_path / "app"))
    assert missing_main.value.code == 1
    (tmp_path / "app" / "__main__.py").write_text("")
    assert runner.resolve_script(str(tmp_path / "app")) == str(tmp_path / "app" / "__main__.py")
    with pytest.raises(runner.NoScript, match="No such file or directory") as nothing:
        runner.resolve_script(str(tmp_path / "gone.py"))
    assert nothing.value.code == 2


def test_exit_codes_are_pythons(capsys):
    assert runner.exit_code_of(None) == 0
    assert runner.exit_code_of(SystemExit()) == 0 and runner.exit_code_of(SystemExit(4)) == 4
    assert runner.exit_code_of(SystemExit("bye")) == 1 and capsys.readouterr().err == "bye\n"
    assert runner.exit_code_of(ValueError("boom")) == 1
    assert "ValueError: boom" in capsys.readouterr().err
    assert runner.exit_code_of(KeyboardInterrupt()) == runner.INTERRUPTED


def test_execute_returns_what_ended_the_code():
    globs = {}
    assert runner.execute(compile("x = 1", "<t>", "exec"), globs) is None and globs["x"] == 1
    ended = runner.execute(compile("raise SystemExit(3)", "<t>", "exec"), {})
    assert isinstance(ended, SystemExit) and ended.code == 3


def test_a_start_failure_is_reported_as_python_does(capsys):
    assert runner.report_start_failure(runner.NoScript("python: can't open file 'x.py'", 2)) == 2
    assert capsys.readouterr().err == "python: can't open file 'x.py'\n"
    assert runner.report_start_failure(SyntaxError("invalid syntax", ("t.py", 1, 1, "(", 1, 1))) == 1
    assert "SyntaxError: invalid syntax" in capsys.readouterr().err
