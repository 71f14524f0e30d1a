"""libcst codemods that migrate the legacy engines' logging onto logkit: behaviour, not names.

Developed in the top-level ``codemods/`` folder, installed as ``logkit.codemods``. The flow, one
module each: ``project`` (the repository as ruff sees it: root, module names, first party, the
names its tests patch) with ``config`` (its ``[tool.logkit.codemod]`` table) and ``loggers``
(which logger persists, which forward to it, read from their modules) -> ``transform`` (the
libcst command: follow each legacy construction to where it goes) with ``persist`` (the logger
that persists, migrated in place), ``hooks`` (injected hooks and their defaults), ``sinks``
(the only call sites rewritten) and ``direct``/``layout``/``imports``/``unused`` (generated code,
its imports, the imports it leaves unused) -> ``runner`` (the project once, prefilter, parallel
workers, verified atomic writes) -> ``report`` (one Site per construction and implementation).
``runtime`` is what migrated code calls (``legacy_hook``). ``logkit codemod``
(logkit/cli/codemod.py) is the command line; docs/migration.md is the guide.
"""
