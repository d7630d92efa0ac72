"""Pure decisions: row types, the state decoder, next steps, the failure vocabulary,
sidecar paths. No I/O, no clock reads.
"""
