"""Text → batches: corpora (corpus.py), the vocabulary, the window and stream protocols
(protocols.py), the built-in corpus and its oracle (synthetic.py), downloads, the DataModule,
and the data keys (config.py)."""
