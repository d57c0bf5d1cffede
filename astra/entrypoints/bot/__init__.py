"""One instance's Discord runtime (`astra instance run ID`)."""
