"""The rules site: one page per rule code, generated from the rule docstrings and their cases.

``python3 -m tools.site`` writes ``mkdocs.yml`` and ``docs/`` into ``site-src/`` (ignored by git)
and, with ``--build``, runs ``mkdocs build --strict`` into ``site-src/site``. It lives beside the
tests rather than in the CLI because the cases it shows are files of the repository, not of the
installed package, and mkdocs is a test dependency only.
"""
