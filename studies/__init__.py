"""salsweep package studies."""
