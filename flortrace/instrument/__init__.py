"""Bytecode layer: find loops, analyse their effects, patch hook calls in, import hook."""
