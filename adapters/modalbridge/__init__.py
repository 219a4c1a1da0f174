"""modalbridge: multimodal sentence-transformers models for Chroma, LangChain and LlamaIndex.

The core, shared by every adapter::

    from modalbridge import Embedder, Reranker, Image, Audio, Video, Combined

    embedder = Embedder("sentence-transformers/clip-ViT-B-32")
    vectors = embedder.embed_documents(["a cat", Image("cat.jpg"), PdfPage("report.pdf", page=2)])

Adapters live in their own modules and need their framework's extra:
``modalbridge.chroma`` (``[chroma]``), ``modalbridge.langchain`` (``[langchain]``),
``modalbridge.llama_index`` (``[llama-index]``).
"""

from modalbridge.embedder import EncodeSettings, Embedder, calibration_ranges
from modalbridge.items import Audio, Combined, Image, MediaItem, PdfPage, Video, modality_of
from modalbridge.loading import LoadSettings, ModelLoadError, clear_model_cache, resolve_device
from modalbridge.media import MediaError
from modalbridge.pipeline import Embedded
from modalbridge.reranker import RankedItem, Reranker, RerankSettings

__version__ = "0.1.0"

__all__ = [
    "Audio",
    "Combined",
    "Embedded",
    "Embedder",
    "EncodeSettings",
    "Image",
    "LoadSettings",
    "MediaError",
    "MediaItem",
    "ModelLoadError",
    "PdfPage",
    "RankedItem",
    "Reranker",
    "RerankSettings",
    "Video",
    "calibration_ranges",
    "clear_model_cache",
    "modality_of",
    "resolve_device",
]
