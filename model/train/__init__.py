"""Training recipe of the embedded model: corpus, tokenizer, FIM examples, training loop, evaluation.

Offline and CPU-first; the same scripts run on a lent GPU. Nothing here is imported by the engine.
"""
