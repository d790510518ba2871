"""The source folders of the packages installed in editable mode (``pip install -e``): the user's own code,
instrumented like the project's.

pip writes a ``direct_url.json`` into the dist-info of every package it installs from a folder; an editable
install says ``"dir_info": {"editable": true}`` there, and its ``url`` names the folder installed. How the
package is then found (a path in a ``.pth`` file, or setuptools' ``__editable__`` finder) does not matter:
its files live under that folder.
"""

from __future__ import annotations

import json
import os
import sys
from urllib.parse import unquote, urlparse


def source_folders(entries=None):
    """Real paths of the folders installed in editable mode, found in the dist-info folders of the
    ``sys.path`` entries (``entries``), in order and without repeats."""
    found = []
    for entry in sys.path if entries is None else entries:
        try:
            names = [n for n in os.listdir(entry or ".") if n.endswith(".dist-info")]
        except OSError:  # a zip file, a missing folder
            continue
        for name in names:
            folder = _editable_folder(os.path.join(entry or ".", name, "direct_url.json"))
            if folder is not None and folder not in found:
                found.append(folder)
    return found


def _editable_folder(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not (data.get("dir_info") or {}).get("editable"):
        return None
    url = urlparse(str(data.get("url", "")))
    if url.scheme != "file":
        return None
    folder = os.path.realpath(unquote(url.path))
    return folder if os.path.isdir(folder) else None
