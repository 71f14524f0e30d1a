"""``python -m logkit``: the CLI, for environments without the console script on PATH."""

from logkit.cli.main import main

main()
