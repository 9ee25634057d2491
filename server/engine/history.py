"""What of each epoch's metric record is stored: long histories are kept compact.

The engine sends every record whole to the stream; the store keeps the first
`settings.history_detail_epochs` epochs whole and, past them, drops the per-split confusion
matrices (the largest fields: classes squared) except every `history_detail_every`-th epoch.
Losses, accuracies and every other number are kept for every epoch.
"""

from __future__ import annotations

DETAIL_SUFFIX = "_confusion_matrix"


def stored_record(record: dict, settings) -> dict:
    """`record` as the store keeps it (see the module docstring)."""
    epoch = int(record.get("epoch") or 0)
    keep_all = getattr(settings, "history_detail_epochs", 1000)
    every = getattr(settings, "history_detail_every", 10)
    if epoch <= keep_all or epoch % every == 0:
        return record
    return {k: v for k, v in record.items() if not k.endswith(DETAIL_SUFFIX)}
