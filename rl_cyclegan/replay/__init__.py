"""Replay: transition buffers, their mix and the durable on-policy episode log (buffers)."""
