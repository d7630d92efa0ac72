"""Requests per output format and rendering of answers: text, JSON, XMP, subtitles,
placeholders.
"""
