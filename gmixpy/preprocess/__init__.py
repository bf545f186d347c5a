"""Preprocessing transforms applied to the bytes before they are modelled (ported from gmix's src/preprocess)."""
