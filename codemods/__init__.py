"""libcst codemods that rewrite the legacy engines call sites onto logkit."""
