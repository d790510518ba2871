"""A recorded run's script arguments, read the way argparse reads them, so runs can be selected
(``replay --where``), tabulated (``flortrace.dataframe(runs=...)``) and exported (MLflow params) by their
hyperparameters without the script's parser.

``--lr 0.1`` and ``--lr=0.1`` give ``lr``, ``-b 32`` gives ``b``, dashes in names become underscores
(argparse's ``dest``), an option followed by another option (or by nothing) is a flag, other arguments are
``arg1``, ``arg2``, ... and ``--`` ends the options. An option given twice keeps its last value.
"""

from __future__ import annotations


def texts(argv) -> dict[str, str]:
    """{name: text as given}; a flag's text is ``true``."""
    params, positional, i, options = {}, 0, 0, True
    argv = list(argv or [])
    while i < len(argv):
        arg = argv[i]
        i += 1
        if options and arg == "--":
            options = False
        elif options and _is_option(arg):
            key, eq, value = arg.lstrip("-").partition("=")
            if not eq:
                value = "true"
                if i < len(argv) and not _is_option(argv[i]):
                    value, i = argv[i], i + 1
            params[key.replace("-", "_") or arg] = value
        else:
            positional += 1
            params[f"arg{positional}"] = arg
    return params


def values(argv) -> dict[str, object]:
    """{name: value}: numbers as numbers, ``true``/``false`` (and flags) as booleans, the rest as text."""
    return {name: _value(text) for name, text in texts(argv).items()}


def _is_option(text: str) -> bool:
    return text.startswith("-") and len(text) > 1 and not _is_number(text)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)
