"""``python -m l3prune``: the same command as ``l3prune``."""

from l3prune.cli import main

raise SystemExit(main())
