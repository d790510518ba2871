"""Imported by import_runtime_error.py: module-level code fails inside a loop."""

TABLE = {}
for k in range(3, -1, -1):
    TABLE[k] = 12 // k
