"""salsweep package sweeps."""
