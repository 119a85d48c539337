"""MkDocs hooks: regenerate the reference pages before every build (see gen_reference.py),
and keep the built pages free of links out of the site.

The generated template pages are listed in the nav under "Templates", whatever templates
exist.
"""

from pathlib import Path

import gen_reference  # MkDocs puts this folder on sys.path while it loads the hook

# The theme's footer links to the MkDocs website; the docs point nowhere outside the site.
THEME_LINK = '<a href="https://www.mkdocs.org/">MkDocs</a>'


def on_pre_build(config):
    pages = gen_reference.generate(Path(config.docs_dir))
    templates = sorted(p for p in pages if p.startswith("templates/") and p != "templates/index.md")
    for entry in config.nav:
        if isinstance(entry, dict) and "Templates" in entry:
            entry["Templates"] = ["templates/index.md", *templates]


def on_post_page(output, page, config):
    return output.replace(THEME_LINK, "MkDocs")


def on_post_template(output_content, template_name, config):  # 404.html, sitemap.xml
    return output_content.replace(THEME_LINK, "MkDocs")
