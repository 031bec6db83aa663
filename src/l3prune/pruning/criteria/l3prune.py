"""L3Prune: keep the first k layers, with k read off the scan's loss profile ("small" or "large").

With a configuration the scan runs on training triplets and the argmin depth of the chosen half is
kept. With a numeric size there is nothing to choose: L3Prune always keeps a prefix, so it keeps the
first n layers (the paper's layer-dropping) and runs no scan.
"""

from __future__ import annotations

from l3prune.errors import L3PruneError
from l3prune.pruning.criteria import Selection, register
from l3prune.pruning.profile import LayerProfile
from l3prune.pruning.scan import DEFAULT_BATCH_SIZE, DEFAULT_NUM_BATCHES, scan_layers


@register("l3prune")
class L3Prune:
    configurations: tuple[str, ...] = ("small", "large")
    needs_data = True

    def __init__(self, *, num_batches: int = DEFAULT_NUM_BATCHES, batch_size: int = DEFAULT_BATCH_SIZE,
                 seed: int = 0, profile: LayerProfile | None = None):
        self.num_batches, self.batch_size, self.seed = num_batches, batch_size, seed
        self.profile = profile  # a finished scan of this very model, to skip rescanning

    def plan(self, total: int, num_layers: int | None, *, configuration: str | None = None) -> Selection | None:
        """A numeric size needs no scan (L3Prune always keeps a prefix); a configuration does."""
        if configuration is not None:
            return None
        if num_layers is None:
            raise L3PruneError("criterion 'l3prune' needs --config small|large, --num-layers or --drop-fraction")
        return Selection(list(range(num_layers)), f"first {num_layers} of {total} layers "
                         "(a size was given, so L3Prune has no depth to choose; no scan)")

    def select(self, encoder, num_layers, *, configuration=None, data=None) -> Selection:
        if configuration is None:
            return self.plan(encoder.num_layers, num_layers)
        if configuration not in self.configurations:
            raise L3PruneError(f"criterion 'l3prune' has no configuration {configuration!r}; "
                               f"choose from {list(self.configurations)}")
        profile = self.profile
        if profile is None or profile.num_layers != encoder.num_layers:
            if data is None:
                from l3prune.data import load_triplets

                data = load_triplets(None)
            _check_enough(data, self.batch_size)
            profile = self.profile = scan_layers(encoder, data, num_batches=self.num_batches,
                                                 batch_size=self.batch_size, seed=self.seed)
        k = getattr(profile, configuration)
        half = profile.num_layers // 2
        span = f"1..{half}" if configuration == "small" else f"{half + 1}..{profile.num_layers}"
        s = profile.settings
        reason = (f"L3Prune {configuration!r}: first {k} of {profile.num_layers} layers, the lowest scan loss "
                  f"({profile.loss_mean[k - 1]:.4f}) over depths {span}; scan of {s.get('num_batches')} batches "
                  f"of {s.get('batch_size')} triplets")
        return Selection(list(range(k)), reason, {"scan_loss": profile.loss_mean, "scan_loss_std": profile.loss_std})


def _check_enough(data, batch_size: int) -> None:
    """The scan batches each source on its own; say so in words that fit every caller (prune has no batch flag)."""
    from collections import Counter

    largest = max(Counter(t.source for t in data).values(), default=0)
    if largest < batch_size:
        raise L3PruneError(
            f"L3Prune's scan draws batches of {batch_size} triplets from one source, but the largest source in "
            f"the data has {largest}; give at least {batch_size} triplets of one source, or a size instead of a "
            "configuration"
        )
