"""Text extraction for the document-extractor node (§4.12)."""

from sluice.adapters.documents.extractor import TextExtractor

__all__ = ["TextExtractor"]
