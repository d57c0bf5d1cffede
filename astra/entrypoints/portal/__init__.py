"""The seller portal (:3100)."""
