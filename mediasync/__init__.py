"""mediasync: mirror media folders to the Gemini File API and write sidecars."""

__version__ = "0.1.0"
