"""MkDocs hook: regenerate the reference pages before every build (see gen_reference.py).

The generated template pages are listed in the nav under "Templates", whatever templates
exist.
"""

from pathlib import Path

import gen_reference  # MkDocs puts this folder on sys.path while it loads the hook


def on_pre_build(config):
    pages = gen_reference.generate(Path(config.docs_dir))
    templates = sorted(p for p in pages if p.startswith("templates/") and p != "templates/index.md")
    for entry in config.nav:
        if isinstance(entry, dict) and "Templates" in entry:
            entry["Templates"] = ["templates/index.md", *templates]
