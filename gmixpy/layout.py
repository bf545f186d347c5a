"""Array layouts shared by the families: several tables laid end to end in one array."""
from __future__ import annotations

import numpy as np


def table_offsets(sizes):
    """First index of each table when a family's tables are laid end to end in one array (sizes: int64[n])."""
    offsets = np.zeros(len(sizes), np.int64)
    if len(sizes):
        offsets[1:] = np.cumsum(sizes)[:-1]
    return offsets
