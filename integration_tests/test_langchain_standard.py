"""The langchain-tests standard integration suite for MultimodalEmbeddings, with the real all-MiniLM-L6-v2."""

from langchain_tests.integration_tests import EmbeddingsIntegrationTests

from modalbridge import testing
from modalbridge.langchain import MultimodalEmbeddings

MINILM = testing.minilm_path()  # resolved at import: the suite needs its params at class definition


class TestMultimodalEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[MultimodalEmbeddings]:
        return MultimodalEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model_name": MINILM, "device": "cpu"}
