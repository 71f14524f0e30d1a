"""The audit chain above the stores: the write path, signed checkpoints, verification.

Reads and writes go through the ``AuditStore`` protocol only, so every backend with
compare-and-append (SQLite, Firestore, memory) gets the same guarantees.
"""
