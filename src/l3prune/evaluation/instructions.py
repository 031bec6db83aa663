"""Query-side task instructions, by task name (ours and MTEB's).

Wording from the E5-mistral / LLM2Vec evaluation tables (LLM2Vec ``test_configs/mteb/
task_to_instructions.json``), without their trailing colon: formatting an instruction for a
model is the encoder's job. Tasks with no published instruction reuse the nearest published
one, noted inline.
"""

from __future__ import annotations

_STS = "Retrieve semantically similar text"
_BANKING = "Given a online banking query, find the corresponding intents"

INSTRUCTIONS: dict[str, str] = {
    # STS (symmetric: the instruction goes on both sentences)
    **{name: _STS for name in (
        "STSBenchmark", "STSBenchmark-dev", "SICK-R", "STS12", "STS13", "STS14", "STS15", "STS16",
        "STS17", "STS22", "BIOSSES",
    )},
    # Retrieval (queries only)
    "MSMARCO": "Given a web search query, retrieve relevant passages that answer the query",
    "msmarco_5k": "Given a web search query, retrieve relevant passages that answer the query",
    "NQ": "Given a question, retrieve Wikipedia passages that answer the question",
    "HotpotQA": "Given a multi-hop question, retrieve documents that can help answer the question",
    "FEVER": "Given a claim, retrieve documents that support or refute the claim",
    "SciFact": "Given a scientific claim, retrieve documents that support or refute the claim",
    "NFCorpus": "Given a question, retrieve relevant documents that best answer the question",
    "FiQA2018": "Given a financial question, retrieve user replies that best answer the question",
    "ArguAna": "Given a claim, find documents that refute the claim",
    "QuoraRetrieval": "Given a question, retrieve questions that are semantically equivalent to the given question",
    "TRECCOVID": "Given a query on COVID-19, retrieve documents that answer the query",
    # Classification and clustering (every text)
    "Banking77Classification": _BANKING,
    # No published Banking77 clustering instruction; the intent instruction fits, and sharing it
    # lets the suite reuse the classification test embeddings.
    "Banking77Clustering": _BANKING,
    "EmotionClassification": "Classify the emotion expressed in the given Twitter message into one of the six "
    "emotions: anger, fear, joy, love, sadness, and surprise",
    "ImdbClassification": "Classify the sentiment expressed in the given movie review text from the IMDB dataset",
    "AmazonPolarityClassification": "Classify Amazon reviews into positive or negative sentiment",
    # Pair classification (symmetric)
    "MRPC": _STS,  # no published MRPC instruction; paraphrase detection is closest to STS
    "SprintDuplicateQuestions": "Retrieve duplicate questions from Sprint forum",
    "TwitterSemEval2015": "Retrieve tweets that are semantically similar to the given tweet",
    "TwitterURLCorpus": "Retrieve tweets that are semantically similar to the given tweet",
    # Reranking (queries only)
    # No published WikiQA instruction; its candidates are Wikipedia answer sentences, as in NQ.
    "WikiQA": "Given a question, retrieve Wikipedia passages that answer the question",
    "AskUbuntuDupQuestions": "Retrieve duplicate questions from AskUbuntu forum",
    "StackOverflowDupQuestions": "Retrieve duplicate questions from StackOverflow forum",
    "SciDocsRR": "Given a title of a scientific paper, retrieve the titles of other relevant papers",
}


def instruction_for(task_name: str) -> str | None:
    """The published instruction for ``task_name``, or None when we know none."""
    return INSTRUCTIONS.get(task_name)
