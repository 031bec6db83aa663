"""The replication study: does the paper's central result hold on real models? Its parts, one concept each:
``rows.py`` (the configurations, as data), ``run.py`` (training and evaluation of the rows, cached and
resumable), ``report.py`` (each model's tables, and the paper's claims against both), ``claims.py`` (the
verdicts' rules), ``figures.py`` and ``row_time.py`` (the runner's estimate of what fits before a deadline);
``queue.sh`` runs the whole study in its order of importance.
"""

import os
from pathlib import Path

# A long run executes from a frozen copy of the code (a git worktree) but writes into the main checkout:
# REPLICATE_ROOT names that checkout's benchmarks/ folder.
ROOT = Path(os.environ.get("REPLICATE_ROOT", Path(__file__).parents[1]))
RESULTS = ROOT / "results"
