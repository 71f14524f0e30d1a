"""libcst codemods that rewrite the legacy engines call sites onto logkit.

The flow, one module each: ``shapes`` (the legacy classes and their loggers, by ``--only``
name) -> ``transform`` (the libcst command: resolve names, plan each site, rewrite) with
``direct`` (field mappings), ``layout`` (the generated call's text) and ``imports`` (where
``import logkit`` goes) -> ``runner`` (prefilter, parallel workers, verified atomic writes)
-> ``report`` (one Site per construction). ``logkit codemod`` (logkit/cli/codemod.py) is the
command line; docs/migration.md is the guide.
"""
