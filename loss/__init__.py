"""salsweep package loss."""
