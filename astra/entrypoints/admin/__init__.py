"""The operator's admin panel (:3000)."""
