"""Media formats and limits, header probes, duration and EXIF, sample media. Shared
with the emulator.
"""
