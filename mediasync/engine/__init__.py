"""The dirty-path queue and the per-path reconciler with its parts: settle, identify,
folders, produce, sweep.
"""
