"""Depth pruning: criteria choose which layers to keep (``criteria``), the scan profiles every depth
(``scan``), and ``commands`` runs ``l3prune prune``. The removal itself is ``l3prune.layers``."""
