"""The user's folders: I/O threads per folder, mounts, scanning, which paths are
candidates, sidecar files.
"""
