"""The remote copy of a content: copies, uploads, renewals, the listing, incomplete
File answers.
"""
