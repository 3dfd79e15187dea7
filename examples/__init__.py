"""Example agents shipped with tracemend (the demo copies them into a scratch repository)."""
